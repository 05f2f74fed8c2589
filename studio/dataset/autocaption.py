"""Auto-captioning with a model already on disk (a transformers image-to-text folder or a WD14 tagger).

Models run in the worker process: loading one takes seconds and gigabytes, and a crash or out-of-memory
there must not take the window with it. Each caption file is written atomically as it goes (a crash keeps
what was done) and reported with the text before it, so the window can offer one undo for the lot.
"""

from __future__ import annotations

import csv
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from PIL import Image

from studio.dataset.captions import read_sidecar
from studio.dataset.images import ImageProblem, open_checked, to_rgb
from studio.dataset.tags import join_tags, split_tags
from studio.errors import DatasetError, StudioError
from studio.events import CaptionWritten, Event, Finished, JobProgress, Log
from studio.fileio import atomic_write_text
from studio.job_requests import AutoCaptionRequest

Kind = Literal["auto", "transformers", "wd14"]
Mode = Literal["append", "replace", "only-empty"]
MODES: tuple[Mode, ...] = ("append", "replace", "only-empty")

WD14_RATING = 9
WD14_CHARACTER = 4


def merge_caption(old: str | None, generated: str, mode: Mode) -> str | None:
    """The caption after auto-captioning; None means leave the file as it is."""
    generated, old_text = generated.strip(), (old or "").strip()
    if not generated or (mode == "only-empty" and old_text):
        return None
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; expected one of {', '.join(MODES)}")
    if mode != "append" or not old_text:
        return generated
    have = {t.casefold() for t in split_tags(old_text)}
    extra = [t for t in split_tags(generated) if t.casefold() not in have]
    return join_tags([*split_tags(old_text), *extra]) if extra else None


def detect_kind(model: Path) -> Kind:
    model = Path(model)
    if (model.is_file() and model.suffix.lower() == ".onnx") or (model / "model.onnx").is_file():
        return "wd14"
    if (model / "config.json").is_file():
        return "transformers"
    raise DatasetError(f"{model} is not a captioning model this app can run",
                       hint="choose a transformers image-to-text folder (with config.json) or a WD14 tagger "
                            "(model.onnx with selected_tags.csv)")


class Wd14Tagger:
    """A WD14-style ONNX tagger: NHWC float32 BGR input of 0–255 on a white square canvas."""

    def __init__(self, model: Path, threshold: float = 0.35, character_threshold: float = 0.85) -> None:
        try:
            import onnxruntime as ort
        except ImportError:
            raise DatasetError("onnxruntime is not installed", hint="pip install onnxruntime to run WD14 "
                                                                    "taggers") from None

        onnx_file = model if model.is_file() else model / "model.onnx"
        tags_file = onnx_file.with_name("selected_tags.csv")
        if not tags_file.is_file():
            raise DatasetError(f"{tags_file} is missing", hint="a WD14 tagger needs selected_tags.csv beside "
                                                               "model.onnx")
        self.names, self.categories = _read_tags(tags_file)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = max(1, (os.cpu_count() or 2) // 2)
        opts.log_severity_level = 3
        self.session = ort.InferenceSession(str(onnx_file), sess_options=opts,
                                            providers=["CPUExecutionProvider"])
        inp = self.session.get_inputs()[0]
        self.input_name = inp.name
        self.side = int(inp.shape[1]) if isinstance(inp.shape[1], int) else 448
        outputs = self.session.get_outputs()[0].shape
        if isinstance(outputs[-1], int) and outputs[-1] != len(self.names):
            raise DatasetError(f"{onnx_file.name} outputs {outputs[-1]} tags but {tags_file.name} lists "
                               f"{len(self.names)}", hint="the model and its tag list do not belong together")
        # the lowest probability each tag needs to be chosen; ratings (safe, explicit…) are never a caption
        self.limits = [None if c == WD14_RATING else character_threshold if c == WD14_CHARACTER else threshold
                       for c in self.categories]

    def _prepare(self, img) -> np.ndarray:  # (side, side, 3)
        img = to_rgb(img)
        longest = max(img.size)
        canvas = Image.new("RGB", (longest, longest), (255, 255, 255))
        canvas.paste(img, ((longest - img.width) // 2, (longest - img.height) // 2))
        canvas = canvas.resize((self.side, self.side), Image.Resampling.BICUBIC)
        return np.asarray(canvas, dtype=np.float32)[:, :, ::-1]  # RGB → BGR, as the taggers were trained

    def caption(self, images: Sequence) -> list[str]:
        batch = np.stack([self._prepare(im) for im in images]).astype(np.float32)
        probs = self.session.run(None, {self.input_name: batch})[0]
        ranked = (sorted(zip(row, self.names, self.limits), key=lambda t: -t[0]) for row in probs)
        return [join_tags(name for p, name, limit in tags if limit is not None and p >= limit)
                for tags in ranked]


def _read_tags(file: Path) -> tuple[list[str], list[int]]:
    names, categories = [], []
    with open(file, encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            name = row.get("name", "")
            # booru tags use underscores; captions use spaces, except for emoticons like ^_^
            names.append(name.replace("_", " ") if len(name) > 3 else name)
            try:
                categories.append(int(row.get("category", 0) or 0))
            except ValueError:
                categories.append(0)
    if not names:
        raise DatasetError(f"{file} lists no tags", hint="expected a CSV with name and category columns")
    return names, categories


class TransformersCaptioner:
    """Any image-to-text model transformers can load from a folder (BLIP, GIT, vision-encoder-decoder)."""

    def __init__(self, model: Path, max_new_tokens: int = 40, prompt: str = "") -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        import torch
        from transformers import AutoModelForImageTextToText, AutoProcessor
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        try:
            self.processor = AutoProcessor.from_pretrained(model, local_files_only=True)
            self.model = AutoModelForImageTextToText.from_pretrained(model, local_files_only=True)
        except (OSError, ValueError, KeyError) as exc:
            raise DatasetError(f"cannot load the captioning model in {model}: {exc}",
                               hint="the folder needs the model's weights, config.json and its processor "
                                    "files (preprocessor_config.json and tokenizer)") from None
        self.model.eval()
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        self.model.to(self.device)
        self.max_new_tokens = max_new_tokens
        self.prompt = prompt

    def caption(self, images: Sequence) -> list[str]:
        import torch

        rgb = [to_rgb(im) for im in images]
        text = {"text": [self.prompt] * len(rgb)} if self.prompt else {}
        inputs = self.processor(images=rgb, return_tensors="pt", **text)
        inputs = {k: v.to(self.device) for k, v in inputs.items() if hasattr(v, "to")}
        with torch.no_grad():
            ids = self.model.generate(**inputs, max_new_tokens=self.max_new_tokens)
        texts = self.processor.batch_decode(ids, skip_special_tokens=True)
        return [" ".join(t.split()) for t in texts]


def load_captioner(job: AutoCaptionRequest):
    model = Path(job.model)
    kind = detect_kind(model) if job.kind == "auto" else job.kind
    if kind == "wd14":
        return Wd14Tagger(model, job.threshold, job.character_threshold)
    return TransformersCaptioner(model, job.max_new_tokens, job.prompt)


@dataclass(frozen=True)
class CaptionResult:
    path: Path
    caption: str | None  # None when the image could not be read
    error: str = ""
    written: bool = False  # the worker has already written it to the sidecar (the window records the undo)


def caption_images(job: AutoCaptionRequest, cancelled: Callable[[], bool] = lambda: False,
                   captioner=None) -> Iterator[CaptionResult]:
    """Caption `job.images` in batches, one result per image; stops between batches when `cancelled()`.
    Unreadable images give a result with an error instead of stopping the job."""
    captioner = captioner or load_captioner(job)
    paths = [Path(p) for p in job.images]
    for start in range(0, len(paths), max(1, job.batch_size)):
        if cancelled():
            return
        chunk = paths[start:start + job.batch_size]
        good, imgs = [], []
        for path in chunk:
            try:
                imgs.append(open_checked(path))
                good.append(path)
            except ImageProblem as exc:
                yield CaptionResult(path, None, exc.reason)
        if imgs:
            for path, text in zip(good, captioner.caption(imgs)):
                yield CaptionResult(path, text)


def autocaption_job(job: AutoCaptionRequest, control: Any) -> Iterator[Event]:
    """Caption `job.images`, writing each sidecar as it goes; one `CaptionWritten` and one `JobProgress`
    per image, then `Finished` (stopped when the user cancelled between batches)."""
    total = len(job.images)
    yield JobProgress(request_id=job.request_id, done=0, total=total, unit="images")
    yield Log(level="info", text=f"auto-caption: loading {job.model}")
    captioner = load_captioner(job)
    stop = (lambda: bool(control.stop_requested)) if control is not None else (lambda: False)
    written: list[str] = []
    t0 = time.monotonic()
    for done, res in enumerate(caption_images(job, stop, captioner), 1):
        if res.caption is None:
            yield CaptionWritten(request_id=job.request_id, image=str(res.path), error=res.error)
        else:
            sidecar = res.path.with_suffix(job.caption_extension)
            before = read_sidecar(sidecar).text
            new = merge_caption(before, res.caption, job.mode)
            error = ""
            if new is not None:
                try:
                    atomic_write_text(sidecar, new)
                    written.append(str(sidecar))
                except StudioError as exc:  # a full or read-only disk: say so for this image, go on
                    new, error = None, str(exc)
            yield CaptionWritten(request_id=job.request_id, image=str(res.path), generated=res.caption,
                                 caption=new, before=before, error=error)
        yield JobProgress(request_id=job.request_id, done=done, total=total, unit="images",
                          eta_s=(time.monotonic() - t0) / done * (total - done))
    yield Finished(outputs=tuple(written), stopped=stop())
