"""Every file we read, pointed at a FIFO, a device, a huge sparse file, a folder, a symlink loop or a dangling
symlink, in a child process: `python -m tests.faults.path_runner <results.jsonl>`.

Why a child: the failure this guards against is a hang (a FIFO blocks its reader for ever) or a read that
never ends (`/dev/zero`); in pytest's own process either would stop the suite instead of failing one case.
The child writes a `begin` line before each case, so when the parent's timeout kills it the case is named,
and it runs under a data-size limit where the OS has one, so `/dev/zero` read whole ends in MemoryError
(a crash, counted) rather than in the machine swapping.

Each result: `ok`, `error:<StudioError subclass>:<message>` or `crash:<type>:<message>`.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

#: (reader, where the hostile thing goes, what must happen: error = a StudioError, ok = handled quietly,
#: any = either, never a crash or a hang)
READERS: tuple[tuple[str, str], ...] = (
    ("project file", "error"), ("base model path", "error"),
    ("base model model_index.json", "error"), ("base model unet/config.json", "error"),
    ("base model unet weights", "error"), ("resume checkpoint folder", "error"), ("resume state.json", "error"),
    ("LoRA file", "error"), ("dataset.json", "error"), ("folder.toml", "any"), ("image (check-dataset)", "ok"),
    ("check cache file", "ok"), ("latent cache entry", "ok"), ("demo --out", "error"),
    ("train --out", "error"), ("run list: config.toml", "ok"), ("run list: events.jsonl", "ok"),
    ("resume: events.jsonl", "any"),  # a huge regular log is appended to; anything else refused
)


def _cases(root: Path, model: Path) -> Iterator[tuple[str, str, str, Callable[[], object]]]:
    from studio.config import load_project
    from studio.dataset.check import _load_cache, check_image
    from studio.dataset.state import load_state
    from studio.demo import create_demo_project
    from studio.formats.reader import read_lora
    from studio.models.load import load_components
    from studio.train import checkpoint as ckpt
    from studio.train.folders import FolderSettings, folder_settings
    from studio.train.latent_cache import CacheKey, LatentCache
    from studio.run_folder import EventLog, check_writable_folder
    from studio.run_folder import read_run
    from tests.faults.hostile_inputs import HOSTILE_KINDS, make_hostile

    root.mkdir()
    n = 0
    for kind in HOSTILE_KINDS:
        for reader, expect in READERS:
            n += 1
            case = root / f"case{n:03d}"
            case.mkdir()

            def put(rel: str) -> Path | None:
                target = case / rel
                if target.exists() or target.is_symlink():
                    target.unlink()
                return target if make_hostile(kind, target) else None

            fn: Callable[[], object] | None = None
            if reader == "project file" and (p := put("project.toml")):
                fn = lambda p=p: load_project(p)  # noqa: E731
            elif reader == "base model path" and (p := put("model")):
                fn = lambda p=p: load_components(p)  # noqa: E731
            elif reader.startswith("base model "):
                folder = case / "model"
                shutil.copytree(model, folder)
                rel = {"base model model_index.json": "model_index.json",
                       "base model unet/config.json": "unet/config.json",
                       "base model unet weights": "unet/diffusion_pytorch_model.safetensors"}[reader]
                if put(f"model/{rel}"):
                    fn = lambda p=folder: load_components(p)  # noqa: E731
            elif reader == "resume checkpoint folder" and (p := put("checkpoint-0000001")):
                fn = lambda p=p: ckpt.read_position(p)  # noqa: E731
            elif reader == "resume state.json":
                (case / "checkpoint-0000001").mkdir()
                if put("checkpoint-0000001/state.json"):
                    fn = lambda p=case / "checkpoint-0000001": ckpt.read_position(p)  # noqa: E731
            elif reader == "LoRA file" and (p := put("lora.safetensors")):
                fn = lambda p=p: read_lora(p)  # noqa: E731
            elif reader == "dataset.json" and put("dataset.json"):
                fn = lambda p=case: load_state(p)  # noqa: E731
            elif reader == "folder.toml" and put("folder.toml"):
                fn = lambda p=case: folder_settings(p, FolderSettings())  # noqa: E731
            elif reader == "image (check-dataset)" and (p := put("photo.png")):
                def fn(p=p):
                    result = check_image(p)
                    assert result.excluded, f"reported usable: {result}"
            elif reader == "check cache file" and (p := put("cache.json")):
                def fn(p=p):
                    assert _load_cache(p) == {}
            elif reader == "latent cache entry":
                image = case / "image.png"
                image.write_bytes(b"\x89PNG not really")
                cache = LatentCache(case / "latents")
                key = CacheKey.for_image(image, (64, 64), flip=False, vae="v", seed=0)
                (case / "latents").mkdir()
                if put(f"latents/{cache.file(key).name}"):
                    def fn(cache=cache, key=key):
                        assert cache.get(key) is None
            elif reader == "demo --out" and kind not in ("folder", "dangling symlink") and (p := put("demo")):
                # (an empty folder is a fine --out; a dangling link is followed, as `mkdir -p` does)
                fn = lambda p=p: create_demo_project(p)  # noqa: E731
            elif reader == "train --out" and kind != "folder" and (p := put("out")):
                fn = lambda p=p: check_writable_folder(p, "[output] directory")  # noqa: E731
            elif reader.startswith("run list: ") and put(reader.removeprefix("run list: ")):
                def fn(run=case):
                    summary = read_run(run)
                    assert summary.name == run.name
            elif reader == "resume: events.jsonl" and (p := put("events.jsonl")):
                fn = lambda p=p: EventLog(p)  # noqa: E731
            if fn is not None:
                yield f"{kind}: {reader}", expect, kind, fn


def main(argv: list[str]) -> int:
    out = Path(argv[0])
    try:
        import resource

        limit = 6 * 2**30  # /dev/zero read whole must end in MemoryError here, not in swapping
        resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))
    except (ImportError, ValueError, OSError):
        pass
    from studio.errors import StudioError
    from studio.libraries import quiet_libraries
    from studio.models.tiny import save_tiny_model
    from tests.faults.fuzz_runner import outcome

    quiet_libraries()
    with tempfile.TemporaryDirectory() as tmp, open(out, "w", encoding="utf-8") as fh:
        root = Path(tmp)
        model = root / "tiny-model"
        save_tiny_model(model, "sd1", seed=0)
        for case_id, expect, kind, fn in _cases(root / "cases", model):
            fh.write(json.dumps({"begin": case_id}) + "\n")
            fh.flush()
            result = outcome(fn, (StudioError,))
            fh.write(json.dumps({"case": case_id, "expect": expect, "kind": kind, "outcome": result}) + "\n")
            fh.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
