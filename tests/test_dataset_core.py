"""The Qt-free dataset core: image checks, the training loader, captions, tags, undoable edits, thumbnails,
project-side state and auto-captioning with tiny models built here."""

from __future__ import annotations

import json
import os
import struct
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from studio.dataset import tags as T
from studio.dataset.captions import CaptionStore
from studio.dataset.check import CheckProgress, check_images
from studio.dataset.edits import apply_edit, plan_batch, plan_edit
from studio.dataset.images import ImageProblem, open_checked, to_rgb, user_region
from studio.dataset.scan import scan_folders
from studio.dataset.state import DatasetState, load_state, save_state
from studio.dataset.thumbnails import ThumbnailCache, make_thumbnail
from studio.dataset.training import training_scan
from studio.errors import DatasetError
from studio.train.buckets import fit_to_bucket

RED, BLUE = (220, 20, 20), (20, 20, 220)


def _two_tone(w: int, h: int) -> Image.Image:
    """Top half red, bottom half blue: any rotation or mirror is visible."""
    arr = np.zeros((h, w, 3), np.uint8)
    arr[: h // 2] = RED
    arr[h // 2:] = BLUE
    return Image.fromarray(arr)


def _png_rgb16(path: Path, arr: np.ndarray) -> None:
    """A 16-bit-per-channel RGB PNG written by hand (Pillow cannot write one)."""
    h, w, _ = arr.shape
    raw = b"".join(b"\x00" + arr[y].astype(">u2").tobytes() for y in range(h))

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    ihdr = struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw))
                     + chunk(b"IEND", b""))


@pytest.fixture()
def messy(tmp_path: Path) -> Path:
    """The acceptance-2 folder: good images and one of each kind of trouble."""
    d = tmp_path / "messy"
    d.mkdir()
    rng = np.random.default_rng(1)
    Image.fromarray((rng.random((96, 128, 3)) * 255).astype("uint8")).save(d / "good1.jpg", quality=90)
    Image.fromarray((rng.random((80, 80, 3)) * 255).astype("uint8")).save(d / "good2.png")
    # truncated JPEG: a real photo-sized JPEG cut in half
    Image.fromarray((rng.random((256, 256, 3)) * 255).astype("uint8")).save(d / "whole.jpg", quality=95)
    data = (d / "whole.jpg").read_bytes()
    (d / "whole.jpg").unlink()
    (d / "truncated.jpg").write_bytes(data[: len(data) // 2])
    (d / "empty.png").write_bytes(b"")
    (d / "notes.png").write_text("this is not an image\n", encoding="utf-8")
    Image.new("CMYK", (72, 72), (0, 255, 255, 0)).save(d / "cmyk.jpg", quality=95)  # pure red in CMYK
    grey16 = (np.linspace(0, 65535, 64 * 64).reshape(64, 64)).astype(np.uint16)
    Image.fromarray(grey16).save(d / "deep.png")
    rgb16 = np.zeros((64, 64, 3), np.uint16)
    rgb16[..., 1] = 65535  # pure green at 16 bits
    _png_rgb16(d / "deep_rgb.png", rgb16)
    rgba = np.zeros((64, 64, 4), np.uint8)
    rgba[:, :32] = (0, 0, 0, 255)  # left half opaque black, right half fully transparent
    Image.fromarray(rgba, "RGBA").save(d / "alpha.png")
    photo = _two_tone(80, 60)  # stored landscape; EXIF 6 says "rotate 90° clockwise to view"
    exif = Image.Exif()
    exif[0x0112] = 6
    photo.save(d / "rotated.jpg", exif=exif, quality=95)
    for name in ("good1", "rotated", "cmyk"):
        (d / f"{name}.txt").write_text(f"{name}, photo", encoding="utf-8")
    return d


VALID = {"good1.jpg", "good2.png", "cmyk.jpg", "deep.png", "deep_rgb.png", "alpha.png", "rotated.jpg"}
INVALID = {"truncated.jpg": "unreadable", "empty.png": "empty", "notes.png": "not-image"}


def test_report_lists_every_problem(messy: Path, tmp_path: Path):
    scan = scan_folders([messy])
    assert {r.path.name for r in scan.images} == VALID | set(INVALID)
    report = check_images(scan.images, min_size=64, cache_dir=tmp_path / "cache")
    kinds = {(p.path.name, p.kind): p.excluded for p in report.problems}
    for name, kind in INVALID.items():
        assert kinds[(name, kind)] is True, report.problems
    assert kinds[("cmyk.jpg", "cmyk")] is False
    assert kinds[("deep.png", "16-bit")] is False
    assert kinds[("deep_rgb.png", "16-bit")] is False
    assert kinds[("alpha.png", "alpha")] is False
    assert kinds[("rotated.jpg", "rotated")] is False
    assert kinds[("rotated.jpg", "small")] is False  # 80×60 < 64 on the short side
    assert report.excluded_paths == {messy / n for n in INVALID}
    # a second run comes from the cache and says the same
    again = check_images(scan_folders([messy]).images, min_size=64, cache_dir=tmp_path / "cache")
    assert again.cached == len(scan.images)
    assert again.problems == report.problems


def _training_pixels(path, width, height, *, crop=None, focus=None):
    """An image as training cuts it (`studio.train.data`): decoded upright in RGB, cut to the crop box,
    scaled to cover width × height and cropped around the focus point."""
    img = to_rgb(open_checked(path))
    region, focus = user_region(img.size, crop, focus)
    return fit_to_bucket(img, width, height, focus=focus, region=region)[0]

def test_loader_yields_exactly_the_valid_images_upright_and_rgb(messy: Path):
    loaded, refused = {}, {}
    for rec in training_scan([messy]).images:
        try:
            loaded[rec.path.name] = _training_pixels(rec.path, 64, 64)
        except ImageProblem as exc:
            refused[rec.path.name] = exc.reason
    assert set(loaded) == VALID
    assert set(refused) == set(INVALID)
    assert all(im.mode == "RGB" and im.size == (64, 64) for im in loaded.values())

    # EXIF 6: the stored top (red) ends up on the right once upright
    upright = np.asarray(to_rgb(Image.open(messy / "rotated.jpg"))).astype(int)
    assert upright.shape[:2] == (80, 60)
    rot = np.asarray(loaded["rotated.jpg"]).astype(int)
    assert np.abs(rot[:, -8:].mean((0, 1)) - RED).max() < 40
    assert np.abs(rot[:, :8].mean((0, 1)) - BLUE).max() < 40
    # CMYK (0, 255, 255, 0) is red
    assert np.abs(np.asarray(loaded["cmyk.jpg"]).astype(int).mean((0, 1)) - (255, 0, 0)).max() < 30
    # 16-bit grey is scaled, not clipped: the gradient spans dark to light
    deep = np.asarray(to_rgb(Image.open(messy / "deep.png"))).astype(int)
    assert deep.min() < 10 and deep.max() > 245 and 100 < deep.mean() < 155
    assert np.abs(np.asarray(loaded["deep_rgb.png"]).astype(int).mean((0, 1)) - (0, 255, 0)).max() < 3
    # transparency is composited on white
    alpha = np.asarray(loaded["alpha.png"]).astype(int)
    assert alpha[:, :24].max() < 10 and alpha[:, -24:].min() > 245


def test_duplicates_excluded_state_and_focus(tmp_path: Path):
    d = tmp_path / "10_cat"
    d.mkdir(parents=True)
    img = _two_tone(100, 40)
    img.save(d / "a.png")
    (d / "b.png").write_bytes((d / "a.png").read_bytes())  # exact duplicate
    _two_tone(40, 100).save(d / "c.png")
    Image.new("RGB", (50, 50), (1, 2, 3)).save(d / "d.png")
    Image.new("RGB", (30, 30), (9, 9, 9)).save(d / "e.png")
    (d / "f.png").write_bytes((d / "e.png").read_bytes())  # a copy that has the caption: it is the one kept
    (d / "f.txt").write_text("captioned", encoding="utf-8")
    report = check_images(scan_folders([tmp_path]).images, cache_dir=tmp_path / "cache")
    assert [p.path.name for p in report.problems if p.kind == "duplicate"] == ["b.png", "e.png"]

    project = tmp_path / "project"
    project.mkdir()
    state = DatasetState().with_excluded([d.resolve() / "d.png"], True)
    state = state.with_focus(d.resolve() / "a.png", (0.0, 0.5)).with_repeats(d.resolve(), 3)
    save_state(state, project)
    assert load_state(project) == state
    scan = training_scan([tmp_path], project_dir=project)
    assert [r.path.name for r in scan.images] == ["a.png", "c.png", "f.png"]
    assert sorted((p.path.name, p.kind) for p in scan.problems) == [("b.png", "duplicate"), ("e.png", "duplicate")]
    a = scan.images[0]
    assert a.repeats == 3 and a.focus == (0.0, 0.5)
    # focus on the left edge: the crop keeps the image's left end (red over blue on both halves)
    left = np.asarray(_training_pixels(a.path, 40, 40, focus=a.focus))
    centre = np.asarray(_training_pixels(a.path, 40, 40))
    assert left.shape == centre.shape == (40, 40, 3)
    # a tall image with a focus at the top keeps the red top
    top = np.asarray(_training_pixels(d / "c.png", 40, 40, focus=(0.5, 0.0))).astype(int)
    assert np.abs(top.mean((0, 1)) - RED).max() < 10
    crop = np.asarray(_training_pixels(d / "c.png", 40, 40, crop=(0, 0.5, 1, 1))).astype(int)
    assert np.abs(crop.mean((0, 1)) - BLUE).max() < 10

    (project / "dataset.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(DatasetError):
        training_scan([tmp_path], project_dir=project)


def test_captions_reload_instead_of_overwrite(tmp_path: Path):
    img = tmp_path / "a.png"
    Image.new("RGB", (8, 8)).save(img)
    store = CaptionStore()
    assert store.read(img) is None
    assert store.write(img, "cat, red").written
    assert (tmp_path / "a.txt").read_text(encoding="utf-8") == "cat, red"
    (tmp_path / "a.txt").write_text("dog, blue", encoding="utf-8")  # another program, same size
    res = store.write(img, "cat, green")
    assert not res.written and res.current == "dog, blue"
    assert (tmp_path / "a.txt").read_text(encoding="utf-8") == "dog, blue"
    assert store.write(img, "dog, green").written  # now known: the next write goes through
    # a file never read by this store is checked against what the caller believes is there
    other = CaptionStore()
    assert not other.write(img, "x", expected="cat").written
    assert other.write(img, "x", expected="dog, green").written
    # None deletes the sidecar
    assert other.write(img, None).written and not (tmp_path / "a.txt").exists()


def test_tag_operations():
    assert T.trigger_first("cat, sks, red", "sks") == "sks, cat, red"
    assert T.trigger_first("a photo of a cat", "sks") == "sks, a photo of a cat"
    assert T.trigger_first(None, "sks") == "sks"
    assert T.remove_tag("cat, Blue_Sky, red", "blue sky") == "cat, red"
    assert T.rename_tag("cat, kitty, red", "kitty", "cat") == "cat, red"
    assert T.remove_duplicates("a, b, a, B") == "a, b"
    assert T.sort_tags("sks, zebra, apple, mango", keep_first=1) == "sks, apple, mango, zebra"
    freq = T.tag_frequencies(["a, b", "b, c", "b, a, a"])
    assert freq == {"b": 3, "a": 2, "c": 1}
    assert T.sort_tags("c, a, b", frequencies=freq) == "b, a, c"
    assert T.find_replace("red cat, red hat", "red", "blue") == "blue cat, blue hat"
    assert T.find_replace("cat 12, dog 7", r"(\w+) (\d+)", r"\2 \1", regex=True) == "12 cat, 7 dog"
    assert T.find_replace("a.b", ".", "!") == "a!b"  # not a regex unless asked
    assert T.find_replace("Cat", "cat", "dog", case_sensitive=False) == "dog"
    with pytest.raises(ValueError):
        T.TagOp("rename", "a", "")
    import re
    with pytest.raises(re.error):
        T.TagOp("replace", "(", "x", regex=True)


def test_batch_edit_undo_redo_restores_disk(tmp_path: Path):
    images = []
    for i in range(100):
        p = tmp_path / f"{i:03d}.png"
        p.touch()
        if i % 10:
            (tmp_path / f"{i:03d}.txt").write_text(f"cat, pose {i}", encoding="utf-8")
        images.append(p)
    before = {p: (p.with_suffix(".txt").read_text(encoding="utf-8") if p.with_suffix(".txt").exists() else None)
              for p in images}
    store = CaptionStore()
    edit = plan_batch(before, T.TagOp("trigger_first", "sks"))
    assert len(edit) == 100 and edit.description.endswith("(100 images)")
    result = apply_edit(store, edit)
    assert len(result.written) == 100
    for p in images:
        text = p.with_suffix(".txt").read_text(encoding="utf-8")
        assert text.startswith("sks")
    apply_edit(store, edit, undo=True)
    for p in images:
        side = p.with_suffix(".txt")
        assert (side.read_text(encoding="utf-8") if side.exists() else None) == before[p]
    apply_edit(store, edit)
    assert all(p.with_suffix(".txt").read_text(encoding="utf-8").startswith("sks") for p in images)
    # an edit to one file made elsewhere survives an undo: that file is reported, not overwritten
    images[5].with_suffix(".txt").write_text("changed elsewhere", encoding="utf-8")
    res = apply_edit(store, edit, undo=True)
    assert res.reloaded == {images[5]: "changed elsewhere"}
    assert images[5].with_suffix(".txt").read_text(encoding="utf-8") == "changed elsewhere"
    assert images[6].with_suffix(".txt").read_text(encoding="utf-8") == before[images[6]]
    assert plan_edit("noop", {images[0]: (None, "")}).changes == ()


def test_thumbnails_cached_by_path_size_mtime(tmp_path: Path, messy: Path):
    cache = ThumbnailCache(tmp_path / "cache", max_side=32)
    first = cache.get(messy / "rotated.jpg")
    assert not first.cached and first.data[:2] == b"\xff\xd8"
    assert (first.width, first.height) == (24, 32)  # upright: portrait
    again = cache.get(messy / "rotated.jpg")
    assert again.cached and again.data == first.data
    assert Image.open(__import__("io").BytesIO(again.data)).size == (24, 32)
    for name in INVALID:
        assert cache.get(messy / name).error
    # editing the file changes its key: a fresh thumbnail, not the stale one
    img = messy / "good2.png"
    cache.get(img)
    Image.new("RGB", (40, 20), (0, 255, 0)).save(img)
    os.utime(img, ns=(time.time_ns(), time.time_ns() + 5_000_000))
    fresh = cache.get(img)
    assert not fresh.cached and (fresh.width, fresh.height) == (32, 16)
    assert make_thumbnail(messy / "cmyk.jpg", 16).mode == "RGB"


def test_check_progress_and_cancel(messy: Path, tmp_path: Path):
    records = scan_folders([messy]).images
    progress = CheckProgress()
    check_images(records, cache_dir=tmp_path / "c1", progress=progress)
    assert progress.done == progress.total == len(records)
    stopped = CheckProgress()
    stopped.cancel()
    report = check_images(records, cache_dir=tmp_path / "c2", progress=stopped, workers=1)
    assert len(report.checks) == 0


# --------------------------------------------------------------------------------------------------
# auto-captioning with tiny models


def _tiny_wd14(folder: Path, tags: list[tuple[str, int]], side: int = 32) -> Path:
    """A WD14-shaped ONNX tagger: NHWC BGR in, one sigmoid per tag out. Tag i's logit is a fixed function
    of the mean colour, so a red image and a blue one get different tags."""
    onnx = pytest.importorskip("onnx")  # a test-only dependency (pyproject: test extra)
    pytest.importorskip("onnxruntime")
    from onnx import TensorProto, helper, numpy_helper

    folder.mkdir(parents=True, exist_ok=True)
    n = len(tags)
    weights = np.zeros((3, n), np.float32)
    bias = np.full((n,), -4.0, np.float32)
    # BGR order: channel 2 is red, channel 0 is blue
    weights[2, 0] = 0.05   # tag 0: red
    weights[0, 1] = 0.05   # tag 1: blue
    bias[2] = 6.0          # tag 2: always (a rating: must be left out)
    bias[3] = 1.0          # tag 3: character tag at p=0.73: under the 0.85 character threshold
    nodes = [helper.make_node("ReduceMean", ["input_1"], ["m"], axes=[1, 2], keepdims=0),
             helper.make_node("MatMul", ["m", "W"], ["z"]),
             helper.make_node("Add", ["z", "b"], ["l"]),
             helper.make_node("Sigmoid", ["l"], ["predictions_sigmoid"])]
    graph = helper.make_graph(nodes, "tiny-wd14",
                              [helper.make_tensor_value_info("input_1", TensorProto.FLOAT, ["N", side, side, 3])],
                              [helper.make_tensor_value_info("predictions_sigmoid", TensorProto.FLOAT, ["N", n])],
                              [numpy_helper.from_array(weights, "W"), numpy_helper.from_array(bias, "b")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, folder / "model.onnx")
    lines = ["tag_id,name,category,count"] + [f"{i},{name},{cat},1" for i, (name, cat) in enumerate(tags)]
    (folder / "selected_tags.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


WD14_TAGS = [("red_thing", 0), ("blue_thing", 0), ("general", 9), ("someone", 4), ("^_^", 0)]


def test_autocaption_wd14_in_process_and_merge_modes(tmp_path: Path):
    from studio.dataset.autocaption import caption_images, detect_kind, merge_caption
    from studio.job_requests import AutoCaptionRequest

    model = _tiny_wd14(tmp_path / "wd14", WD14_TAGS)
    red, blue = tmp_path / "red.png", tmp_path / "blue.png"
    Image.new("RGB", (40, 30), (255, 0, 0)).save(red)
    Image.new("RGB", (30, 40), (0, 0, 255)).save(blue)
    (tmp_path / "bad.png").write_bytes(b"nope")
    assert detect_kind(model) == "wd14"
    job = AutoCaptionRequest(model=str(model), images=(str(red), str(blue), str(tmp_path / "bad.png")), batch_size=2)
    results = {r.path.name: r for r in caption_images(job)}
    assert results["red.png"].caption == "red thing"
    assert results["blue.png"].caption == "blue thing"
    assert results["bad.png"].caption is None and results["bad.png"].error

    assert merge_caption("cat", "red thing", "only-empty") is None
    assert merge_caption("", "red thing", "only-empty") == "red thing"
    assert merge_caption("cat, red thing", "red thing, blue thing", "append") == "cat, red thing, blue thing"
    assert merge_caption("cat", "red thing", "replace") == "red thing"
    with pytest.raises(DatasetError):
        detect_kind(tmp_path)


def test_the_autocaption_job_writes_each_caption_reports_it_and_stops_between_batches(tmp_path: Path):
    from studio.dataset.autocaption import autocaption_job
    from studio.events import CaptionWritten, Finished, JobProgress
    from studio.job_requests import AutoCaptionRequest
    from studio.train.control import TrainControl

    model = _tiny_wd14(tmp_path / "wd14", WD14_TAGS)
    images = []
    for i in range(6):
        p = tmp_path / f"{i}.png"
        Image.new("RGB", (20, 20), (255, 0, 0) if i % 2 else (0, 0, 255)).save(p)
        images.append(str(p))
    (tmp_path / "0.txt").write_text("sky", encoding="utf-8")  # append: the new tag goes after it
    (tmp_path / "1.txt").write_text("red thing", encoding="utf-8")  # append: nothing new, left alone
    job = AutoCaptionRequest(model=str(model), images=tuple(images), batch_size=2, mode="append", request_id=12)
    events = list(autocaption_job(job, TrainControl()))
    written = [e for e in events if isinstance(e, CaptionWritten)]
    progress = [e for e in events if isinstance(e, JobProgress)]
    assert [Path(e.image).name for e in written] == [f"{i}.png" for i in range(6)]
    assert {e.request_id for e in written + progress} == {12}
    assert [e.generated for e in written] == ["blue thing" if i % 2 == 0 else "red thing" for i in range(6)]
    assert (written[0].before, written[0].caption) == ("sky", "sky, blue thing")
    assert (written[1].before, written[1].caption) == ("red thing", None)
    assert (written[2].before, written[2].caption) == (None, "blue thing")
    assert [(e.done, e.total, e.unit) for e in progress] == [(i, 6, "images") for i in range(7)]
    assert progress[-1].eta_s == 0
    assert (tmp_path / "0.txt").read_text(encoding="utf-8") == "sky, blue thing"
    assert (tmp_path / "1.txt").read_text(encoding="utf-8") == "red thing"
    assert (tmp_path / "5.txt").read_text(encoding="utf-8") == "red thing"
    finished = events[-1]
    assert isinstance(finished, Finished) and not finished.stopped and len(finished.outputs) == 5

    # only-empty leaves every caption that exists; a stop asked for after the first batch ends the job there
    for i in range(6):
        (tmp_path / f"{i}.txt").unlink(missing_ok=True)
    control = TrainControl()
    stopped = []
    for event in autocaption_job(AutoCaptionRequest(model=str(model), images=tuple(images), batch_size=2,
                                                    mode="only-empty"), control):
        stopped.append(event)
        if isinstance(event, CaptionWritten):
            control.request_stop()
    assert sum(isinstance(e, CaptionWritten) for e in stopped) == 2  # the batch in progress is finished
    assert isinstance(stopped[-1], Finished) and stopped[-1].stopped
    assert sorted(q.name for q in tmp_path.glob("*.txt")) == ["0.txt", "1.txt"]

    # a missing model fails with a message, not a hang
    with pytest.raises(DatasetError, match="not a captioning model"):
        list(autocaption_job(AutoCaptionRequest(model=str(tmp_path / "nothing"), images=tuple(images)), None))


def test_autocaption_tiny_blip(tmp_path: Path):
    """A BLIP-architecture model built here (random weights) captions through the transformers path."""
    import torch
    from transformers import BertTokenizer, BlipConfig, BlipForConditionalGeneration, BlipImageProcessor, BlipProcessor

    from studio.dataset.autocaption import TransformersCaptioner, caption_images, detect_kind
    from studio.job_requests import AutoCaptionRequest

    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "photo", "of", "cat", "dog", "red", "the"]
    (tmp_path / "vocab.txt").write_text("\n".join(words) + "\n", encoding="utf-8")
    processor = BlipProcessor(image_processor=BlipImageProcessor(size={"height": 32, "width": 32}),
                              tokenizer=BertTokenizer(str(tmp_path / "vocab.txt")))
    text = dict(vocab_size=len(words), hidden_size=32, intermediate_size=37, num_hidden_layers=1,
                num_attention_heads=4, max_position_embeddings=64, bos_token_id=2, eos_token_id=3, pad_token_id=0,
                sep_token_id=3)
    vision = dict(hidden_size=32, intermediate_size=37, num_hidden_layers=1, num_attention_heads=4, image_size=32,
                  patch_size=8)
    torch.manual_seed(0)
    model_dir = tmp_path / "blip"
    BlipForConditionalGeneration(BlipConfig(text_config=text, vision_config=vision, projection_dim=32)
                                 ).save_pretrained(model_dir)
    processor.save_pretrained(model_dir)
    assert detect_kind(model_dir) == "transformers"
    img = tmp_path / "x.png"
    Image.new("RGB", (50, 40), (200, 10, 10)).save(img)
    job = AutoCaptionRequest(model=str(model_dir), images=(str(img), str(img)), max_new_tokens=5, batch_size=2)
    results = list(caption_images(job, captioner=TransformersCaptioner(model_dir, max_new_tokens=5)))
    assert len(results) == 2 and results[0].caption == results[1].caption
    assert results[0].caption and set(results[0].caption.split()) <= set(words[5:])


def test_decompression_bomb_guard_and_import_copies(tmp_path: Path, monkeypatch):
    from studio.dataset import check as check_module
    from studio.dataset.drop_kinds import classify
    from studio.dataset.importer import import_copies

    big = tmp_path / "big.png"
    Image.new("RGB", (100, 100)).save(big)
    monkeypatch.setattr(check_module, "MAX_PIXELS", 5000)  # a 10,000-pixel image now counts as a bomb
    result = check_module.check_image(big)
    assert [(p.kind, p.excluded) for p in result.problems] == [("too-large", True)]

    (tmp_path / "big.txt").write_text("big", encoding="utf-8")
    (tmp_path / "readme.md").write_text("x", encoding="utf-8")
    dropped = classify([big, tmp_path / "readme.md", tmp_path])
    assert dropped.images == (big.resolve(),) and dropped.folders == (tmp_path.resolve(),)
    assert [i.path.name for i in dropped.ignored] == ["readme.md"]
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "big.png").write_bytes(b"taken")
    copies = import_copies([big], dest)
    assert [c.name for c in copies] == ["big-2.png"]
    assert (dest / "big-2.txt").read_text(encoding="utf-8") == "big" and (dest / "big.png").read_bytes() == b"taken"


def test_streamed_scan_matches_the_whole_scan(tmp_path: Path):
    from studio.dataset.scan import iter_scan
    from studio.dataset.stream import Stream

    for i in range(10):
        Image.new("RGB", (4, 4)).save(tmp_path / f"{i}.png")
    (tmp_path / "0.txt").write_text("zero", encoding="utf-8")
    stream = Stream(lambda: iter_scan([tmp_path, tmp_path / "missing"], chunk=2, max_chunk=4)).start()
    stream.join(10)
    chunks = stream.take()
    assert stream.finished and stream.error is None
    records = [r for recs, _ in chunks for r in recs]
    problems = [p for _, probs in chunks for p in probs]
    assert records == list(scan_folders([tmp_path]).images)
    assert [len(recs) for recs, _ in chunks if recs] == [2, 4, 4]  # growing pieces
    assert [p.kind for p in problems] == ["missing"]
    assert records[0].caption == "zero" and records[0].has_caption_file and not records[1].has_caption_file


def test_check_dataset_command(messy: Path, tmp_path: Path, capsys, monkeypatch):
    import argparse

    from studio.cli import dataset_cmd

    monkeypatch.setenv("LORA_STUDIO_CACHE_DIR", str(tmp_path / "cache"))
    parser = argparse.ArgumentParser()
    dataset_cmd.register(parser.add_subparsers())
    args = parser.parse_args(["check-dataset", str(messy), "--resolution", "64", "--json"])
    assert args.func(args) == dataset_cmd.EXIT_EXCLUDED
    report = json.loads(capsys.readouterr().out)
    assert report["images"] == len(VALID | set(INVALID)) and report["usable"] == len(VALID)
    assert {(Path(p["path"]).name, p["kind"]) for p in report["problems"] if p["excluded"]} == set(INVALID.items())
    good = tmp_path / "good"
    good.mkdir()
    Image.new("RGB", (64, 64)).save(good / "a.png")
    args = parser.parse_args(["check-dataset", str(good), "--resolution", "64"])
    assert args.func(args) == 0
    assert "1 of 1 images will be used" in capsys.readouterr().out


def test_the_engines_loader_gets_exactly_the_valid_images(messy: Path):
    """Acceptance 2 against the real training data path (`studio.train.data.prepare_dataset`), with a VAE
    stand-in that passes pixels through, so what training would encode can be looked at."""
    import types

    import torch

    from studio.config import DatasetConfig
    from studio.train.data import prepare_dataset

    class PixelVAE:
        config = types.SimpleNamespace(scaling_factor=1.0, shift_factor=0.0)

        def encode(self, pixels):
            return types.SimpleNamespace(latent_dist=types.SimpleNamespace(mean=pixels, std=torch.zeros_like(pixels)))

    records = list(training_scan([messy]).images)
    prepared = prepare_dataset(records, DatasetConfig(resolution=64), PixelVAE(), device=torch.device("cpu"),
                               dtype=torch.float32, seed=0)
    got = {Path(ex.path).name: ex for ex in prepared.examples}
    assert set(got) == VALID
    assert {Path(s.split(":")[0]).name for s in prepared.skipped} == set(INVALID)
    for ex in got.values():
        assert ex.latents.shape[0] == 3  # RGB, whatever the file held
    rotated = ((got["rotated.jpg"].latents + 1) * 127.5).permute(1, 2, 0).numpy()
    assert got["rotated.jpg"].original_size == (80, 60)  # (height, width): upright, portrait
    assert np.abs(rotated[:, -4:].mean((0, 1)) - RED).max() < 40
    assert np.abs(rotated[:, :4].mean((0, 1)) - BLUE).max() < 40
    cmyk = ((got["cmyk.jpg"].latents + 1) * 127.5).mean((1, 2)).numpy()
    assert np.abs(cmyk - (255, 0, 0)).max() < 30
