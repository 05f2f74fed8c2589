"""Every long job the worker runs, as one typed request each: what the window (or the CLI) asks for.

A request is a worker-protocol command, so it crosses the pipe as `{"v": 1, "type": "<type>", ...fields}`,
decoded strictly into exactly its class (no dict of parameters, no function name); a type not in the worker's
job table is refused before anything is imported. `request_id` comes back in the job's events and results,
so each panel knows its own. Torch-free and Qt-free: both processes import it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from studio.mix.grid import GridAxis
from studio.mix.request import MixEntry, RenderRequest


@dataclass(frozen=True, kw_only=True)
class JobRequest:
    """Base of every job's request: `type` names it on the wire, `title` in the window's job list
    (`class TrainRequest(JobRequest, type="start", title="training")`, or ClassVars of those names)."""

    type: ClassVar[str] = "job"
    title: ClassVar[str] = "job"
    request_id: int = 0

    def __init_subclass__(cls, type: str = "", title: str = "", **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.type, cls.title = type or cls.type, title or cls.title


@dataclass(frozen=True, kw_only=True)
class TrainRequest(JobRequest, type="start", title="training"):
    """A training run. The config travels as TOML text so unsaved edits in the form are what trains."""

    config_toml: str
    project_file: str | None = None
    resume_from: str | None = None
    run_dir: str | None = None


@dataclass(frozen=True, kw_only=True)
class MixPreviewRequest(JobRequest, type="mix_preview", title="mixer preview"):
    """One preview image of a mix on `base`, written as a PNG to `out`."""

    base: str
    out: str
    request: RenderRequest
    device: str | None = None


@dataclass(frozen=True, kw_only=True)
class MixGridRequest(JobRequest, type="mix_grid", title="strength grid"):
    """A strength grid: `x` (and optionally `y`) strengths of one LoRA each, every cell a preview."""

    base: str
    out: str
    request: RenderRequest
    x: GridAxis
    y: GridAxis | None = None
    device: str | None = None


@dataclass(frozen=True, kw_only=True)
class MixExportRequest(JobRequest, type="mix_export", title="merged export"):
    """The mix as one LoRA file; `rank` None concatenates the factors (exact), a number re-factors by SVD."""

    loras: tuple[MixEntry, ...]
    out: str
    rank: int | None = None
    dtype: Literal["fp16", "bf16", "fp32"] = "fp16"


@dataclass(frozen=True, kw_only=True)
class MixBakeRequest(JobRequest, type="mix_bake", title="bake into checkpoint"):
    """The mix baked into a copy of the base checkpoint; `dtype` None keeps the base model's."""

    base: str
    loras: tuple[MixEntry, ...]
    out: str
    dtype: Literal["fp16", "bf16", "fp32"] | None = None


@dataclass(frozen=True, kw_only=True)
class PlainCopyRequest(JobRequest, type="mix_plain", title="plain-LoRA copy"):
    """A plain-LoRA copy of `src` (docs/compatibility.md); `base` is needed only for DoRA files."""

    src: str
    out: str
    rank: int
    base: str | None = None
    dtype: Literal["fp16", "bf16", "fp32"] = "fp16"


@dataclass(frozen=True, kw_only=True)
class AutoCaptionRequest(JobRequest, type="autocaption", title="auto-captioning"):
    """Captions for `images` from a local captioning model (WD14 tagger or a transformers captioner)."""

    model: str
    images: tuple[str, ...]
    mode: Literal["append", "replace", "only-empty"] = "append"
    kind: Literal["auto", "transformers", "wd14"] = "auto"
    threshold: float = 0.35
    character_threshold: float = 0.85
    max_new_tokens: int = 40
    batch_size: int = 4
    prompt: str = ""
    caption_extension: str = ".txt"


@dataclass(frozen=True, kw_only=True)
class DemoProjectRequest(JobRequest, type="demo_project", title="demo project"):
    """Create (or reuse) the demo project in `folder`: its tiny model is built with diffusers, so never in
    the window's process."""

    folder: str


#: every request type, in the order the job list shows them; the protocol's command table is built from it
JOB_REQUEST_TYPES: tuple[type[JobRequest], ...] = tuple(JobRequest.__subclasses__())
