"""Resumable training state: `checkpoints/checkpoint-<step>/`, a different artefact from the exported LoRA.

It holds what an interrupted run needs to continue as if nothing happened: the adapter weights (peft's
naming), the optimizer and LR-scheduler state, every random generator, the step and the data position.
It is written as a folder renamed into place, so a kill during a save leaves the previous checkpoint as the
newest complete one; loading uses torch's weights-only unpickler.
"""

from __future__ import annotations

import json
import os
import pickle
import random
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from studio.codec import from_data
from studio.errors import ConfigError, StudioError, UnsafeFileError
from studio.fileio import atomic_dir
from studio.run_folder import CHECKPOINT_STATE as STATE_FILE
from studio.safe_read import existing_folder, read_capped

EXTRA_DIR = "extra"


@dataclass(frozen=True)
class LoopPosition:
    step: int  # optimizer steps done
    epoch: int
    index: int  # next example index within the epoch's order
    family: str
    rank: int
    train_text_encoder: bool
    network: str = "lora"  # the adapter type; older checkpoints are LoRA
    optimizer: str = ""  # the optimizer's name; "" in checkpoints from before it was recorded


def _rng_state(noise_gen: torch.Generator) -> dict:
    state = {
        "torch": torch.get_rng_state(),
        "noise": noise_gen.get_state(),
        "numpy": torch.from_numpy(np.frombuffer(np.random.get_state()[1].tobytes(), dtype=np.uint8).copy()),
        "numpy_pos": torch.tensor(np.random.get_state()[2]),
        "python": torch.tensor(list(random.getstate()[1]), dtype=torch.int64),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict, noise_gen: torch.Generator) -> None:
    torch.set_rng_state(state["torch"])
    noise_gen.set_state(state["noise"])
    keys = np.frombuffer(state["numpy"].numpy().tobytes(), dtype=np.uint32)
    np.random.set_state(("MT19937", keys, int(state["numpy_pos"])))
    random.setstate((3, tuple(int(x) for x in state["python"].tolist()), None))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: Path, *, adapters: dict[str, dict[str, torch.Tensor]], optimizer, lr_scheduler,
                    noise_gen: torch.Generator, position: LoopPosition, keep: int,
                    extra: dict[str, dict[str, torch.Tensor]] | None = None) -> Path:
    """`extra`: more named tensor sets the run needs to continue (the EMA weights, PiSSA's starting
    adapter), written to `extra/<name>.safetensors` so they are never mistaken for adapters."""
    with atomic_dir(path) as tmp:
        files = [(tmp / f"{prefix}.safetensors", sd) for prefix, sd in adapters.items()]
        files += [(tmp / EXTRA_DIR / f"{name}.safetensors", sd) for name, sd in (extra or {}).items()]
        for target, sd in files:
            target.parent.mkdir(exist_ok=True)
            save_file({k: v.detach().cpu().contiguous() for k, v in sd.items()}, str(target))
        torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
        torch.save(lr_scheduler.state_dict(), tmp / "scheduler.pt")
        torch.save(_rng_state(noise_gen), tmp / "rng.pt")
        (tmp / STATE_FILE).write_text(json.dumps(asdict(position), indent=1), encoding="utf-8")
    prune_checkpoints(path.parent, keep)
    return path


def prune_checkpoints(folder: Path, keep: int) -> None:
    done = sorted(p for p in folder.glob("checkpoint-*") if (p / STATE_FILE).is_file())
    for old in done[:-keep] if keep > 0 else []:
        # the state file goes first: a kill during the removal leaves a folder that no longer looks complete,
        # never one that looks resumable but lacks its optimizer or weights
        (old / STATE_FILE).unlink(missing_ok=True)
        shutil.rmtree(old, ignore_errors=True)


#: bounds on the counts a state file may claim: the config's own limits (steps, rank), and for the data position
#: more epochs and examples than any run can have; anything beyond is a damaged or forged file, which would
#: otherwise overflow the data order's seeds (an epoch of 1e30) or allocate without end
MAX_STEP = 10_000_000
MAX_POSITION = 10**9
MAX_RANK = 1024
STATE_FILE_LIMIT = 1 << 20
CHOOSE_HINT = "choose a checkpoint-<step> folder inside a run's checkpoints/ folder"
EARLIER_HINT = "resume from an earlier checkpoint"


def read_position(path: Path) -> LoopPosition:
    if path.suffix.lower() == ".safetensors" and os.path.isfile(path):
        raise ConfigError(f"{path} is an exported LoRA file, not a training checkpoint: an export holds only "
                          "the weights, not the optimizer and data position a run continues from",
                          hint=CHOOSE_HINT)
    existing_folder(path, "checkpoint", error=ConfigError, hint=CHOOSE_HINT)
    if not os.path.lexists(path / STATE_FILE):
        raise ConfigError(f"{path}: not a training checkpoint (no {STATE_FILE})", hint=CHOOSE_HINT)
    try:
        raw = read_capped(path / STATE_FILE, "checkpoint state file", limit=STATE_FILE_LIMIT, error=ConfigError,
                          hint=EARLIER_HINT)
    except StudioError as exc:
        raise ConfigError(f"{path}: damaged checkpoint ({exc})", hint=EARLIER_HINT) from None
    try:  # the one codec reads it strictly: a string, a float or a boolean for a count is damage
        position = from_data(json.loads(raw.decode("utf-8")), LoopPosition, where=STATE_FILE)
    except (ValueError, RecursionError, StudioError) as exc:
        raise ConfigError(f"{path}: damaged checkpoint ({str(exc)[:200]})", hint=EARLIER_HINT) from None
    for name, value, most in (("step", position.step, MAX_STEP), ("epoch", position.epoch, MAX_POSITION),
                              ("index", position.index, MAX_POSITION), ("rank", position.rank, MAX_RANK)):
        if not 0 <= value <= most:
            raise ConfigError(f"{path}: damaged checkpoint ({STATE_FILE} claims {name} {value}, where a run "
                              f"counts from 0 to {most:,} at most)", hint=EARLIER_HINT)
    return position


def _damaged(path: Path, name: str, exc: BaseException) -> ConfigError:
    return ConfigError(f"{path}: damaged checkpoint ({name}: {type(exc).__name__}: {str(exc).splitlines()[0][:200]})"
                       if str(exc).strip() else f"{path}: damaged checkpoint ({name}: {type(exc).__name__})",
                       hint=EARLIER_HINT)


def _load_tensors(path: Path, files: list[Path]) -> dict[str, dict[str, torch.Tensor]]:
    out = {}
    for f in files:
        try:
            out[f.stem] = load_file(str(f))
        except (SafetensorError, OSError, RuntimeError, ValueError) as exc:
            raise _damaged(path, f.name, exc) from None
    return out


def load_adapters(path: Path) -> dict[str, dict[str, torch.Tensor]]:
    found = _load_tensors(path, sorted(path.glob("*.safetensors")))
    if not found:
        raise ConfigError(f"{path}: damaged checkpoint (it holds no adapter weights)", hint=EARLIER_HINT)
    return found


def load_extra(path: Path) -> dict[str, dict[str, torch.Tensor]]:
    return _load_tensors(path, sorted((path / EXTRA_DIR).glob("*.safetensors")))


def _restore(path: Path, name: str, apply) -> None:
    """torch.load (weights only) one state file and hand it to `apply`; every failure names the checkpoint."""
    try:
        state = torch.load(path / name, weights_only=True)
    except pickle.UnpicklingError as exc:
        raise UnsafeFileError(f"{path}: refused {name}: it holds more than plain tensors and numbers, and a file "
                              "like that can run code when loaded", hint="resume from a checkpoint you made "
                              "yourself, or start a new run") from None
    except Exception as exc:  # noqa: BLE001 - a torn or overwritten file makes the unpickler raise almost anything
        raise _damaged(path, name, exc) from None
    try:
        apply(state)
    except (KeyError, IndexError, TypeError, ValueError, RuntimeError, AttributeError) as exc:
        raise _damaged(path, name, exc) from None


#: param-group flags whose presence depends on the torch version, not on which optimizer made the state
_VERSION_FLAGS = frozenset({"params", "foreach", "maximize", "capturable", "differentiable", "fused",
                            "decoupled_weight_decay", "initial_lr"})


def _same_optimizer(path: Path, optimizer, *, compare_settings: bool):
    """`optimizer.load_state_dict`, after checking the saved state was made by the same kind of optimizer:
    torch accepts another's state (the groups line up) and the first step then fails (`KeyError: 'beta1'`).
    Older checkpoints do not name their optimizer; for them the groups' hyper-parameter names tell."""
    def apply(state) -> None:
        saved = state.get("param_groups") if isinstance(state, dict) else None
        if not isinstance(saved, list) or not saved or not all(isinstance(g, dict) for g in saved):
            raise ValueError("no parameter groups")
        wanted = {k for g in optimizer.state_dict()["param_groups"] for k in g} - _VERSION_FLAGS
        found = {k for g in saved for k in g} - _VERSION_FLAGS
        # only for checkpoints that do not name their optimizer: a torch upgrade may add a setting to a group,
        # which must not refuse a checkpoint whose state.json says it is the same optimizer
        if compare_settings and wanted != found:
            raise ConfigError(f"{path}: the checkpoint was trained with another optimizer (its settings are "
                              f"{', '.join(sorted(found))}; the chosen optimizer has {', '.join(sorted(wanted))})",
                              hint="resume with the optimizer of the original run (its config.toml), or start a "
                                   "new run")
        sizes = [len(g.get("params", ())) for g in optimizer.state_dict()["param_groups"]]
        saved_sizes = [len(g.get("params", ())) if isinstance(g.get("params"), (list, tuple)) else -1 for g in saved]
        if sizes != saved_sizes:
            raise ConfigError(f"{path}: the checkpoint's adapter has {sum(saved_sizes)} trained tensors and the "
                              f"settings make {sum(sizes)}: it was trained with other network settings (DoRA, "
                              "targets, LoRA+, text encoder)",
                              hint="resume with the settings of the original run (its config.toml)")
        optimizer.load_state_dict(state)
    return apply


def restore_training_state(path: Path, *, optimizer, lr_scheduler, noise_gen: torch.Generator,
                           optimizer_recorded: bool = False) -> None:
    """`optimizer_recorded`: state.json named the optimizer (the engine compared it): no need to guess it."""
    _restore(path, "optimizer.pt", _same_optimizer(path, optimizer, compare_settings=not optimizer_recorded))
    _restore(path, "scheduler.pt", lr_scheduler.load_state_dict)
    _restore(path, "rng.pt", lambda state: _set_rng_state(state, noise_gen))
