"""The model picker's words for a model: sizes, family names, one-line summaries, problems, skipped files."""

from __future__ import annotations

from pathlib import Path

from studio.errors import ModelLoadError
from studio.models.describe import (details, display_name, family_text, format_size, picker_rows, problem_text, same_path,
                                    skipped_details, skipped_note, summary)
from studio.models.detect import ModelInfo, SkippedFile


def model(name: str, family: str = "sd1", prediction: str = "epsilon", **kw) -> ModelInfo:
    values = dict(precision="fp16", size_bytes=2_132_000_000, layout="single-file", prediction_source="metadata")
    values.update(kw)
    return ModelInfo(path=Path("/models") / name, family=family, prediction=prediction, **values)


def test_sizes_in_decimal_units():
    assert [format_size(n) for n in (0, 999, 1000, 5_618_750, 999_960, 150_000_000, 2_132_000_000,
                                     6_938_000_000_000)] == \
        ["0 B", "999 B", "1.0 kB", "5.6 MB", "1.0 MB", "150 MB", "2.1 GB", "6.9 TB"]


def test_family_names_and_one_line_summary():
    assert [family_text(model("m", f)) for f in ("sd1", "sd2", "sd2-v", "sdxl")] == \
        ["SD 1.x", "SD 2.x 512", "SD 2.x 768-v", "SDXL"]
    assert family_text(model("noob", "sdxl", "v_prediction")) == "SDXL v-pred"
    assert family_text(model("v2", "sd2-v", "v_prediction")) == "SD 2.x 768-v"
    assert summary(model("one.safetensors")) == "SD 1.x · fp16 · 2.1 GB · single file"
    assert summary(model("xl", "sdxl", precision="fp32", size_bytes=11_092_375, layout="diffusers")) == \
        "SDXL · fp32 · 11.1 MB · diffusers folder"


def test_details_say_when_the_prediction_type_is_only_assumed():
    text = details(model("sd21.safetensors", "sd2", prediction_source="default", notes=("a note",)))
    assert text.splitlines()[0] == "/models/sd21.safetensors"
    assert "epsilon assumed" in text and text.endswith("a note")
    assert "from the file's metadata" in details(model("one.safetensors"))


def test_problem_text_keeps_the_detectors_message_and_hint():
    err = ModelLoadError("x.txt is not a model file", hint="choose a .safetensors file")
    assert problem_text(err) == "x.txt is not a model file — choose a .safetensors file"
    assert problem_text(ModelLoadError("base model not found: /m")) == "base model not found: /m"
    assert problem_text(PermissionError(13, "Permission denied")).startswith("cannot read: ")


def test_skipped_files_note_and_reasons():
    assert skipped_note([]) == ""
    one = [SkippedFile(Path("/m/a.safetensors"), "a.safetensors is a LoRA, not a base model")]
    assert skipped_note(one) == "1 file skipped"
    many = [SkippedFile(Path(f"/m/{i}.ckpt"), "truncated") for i in range(20)]
    assert skipped_note(many) == "20 files skipped"
    assert skipped_details(one) == "a.safetensors: a.safetensors is a LoRA, not a base model"
    lines = skipped_details(many, limit=3).splitlines()
    assert lines == ["0.ckpt: truncated", "1.ckpt: truncated", "2.ckpt: truncated", "… and 17 more"]


def test_rows_put_the_projects_model_first_unless_a_folder_has_it():
    a, b = model("a.safetensors"), model("b.safetensors", "sdxl")
    elsewhere = ModelInfo(Path("/elsewhere/c"), "sd1", "epsilon", "fp32", 1, "diffusers")
    assert picker_rows([a, b], None) == [a, b]
    assert picker_rows([a, b], elsewhere) == [elsewhere, a, b]
    same_as_b = ModelInfo(Path("/models/sub/../b.safetensors"), "sdxl", "epsilon", "fp16", 1, "single-file")
    assert picker_rows([a, b], same_as_b) == [a, b]
    assert same_path("/models/./a.safetensors", Path("/models/a.safetensors"))
    assert not same_path("/models/a.safetensors", "/models/b.safetensors")


def test_names_show_the_sub_folder_inside_the_model_folder():
    roots = ["/models", "/other/"]
    assert display_name(Path("/models/sdxl/base.safetensors"), roots) == "sdxl/base.safetensors"
    assert display_name("/other/x.ckpt", roots) == "x.ckpt"
    assert display_name("/elsewhere/y.safetensors", roots) == "y.safetensors"
    assert display_name("/models-old/z.safetensors", roots) == "z.safetensors"  # not inside /models
