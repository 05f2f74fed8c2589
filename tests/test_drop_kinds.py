"""Dropped paths sorted by what they are (studio.dataset.drop_kinds), torch-free, from headers alone."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image
from safetensors.numpy import save_file

from studio.dataset.drop_kinds import classify


def _tensors(*keys: str) -> dict[str, np.ndarray]:
    return {k: np.zeros((2, 2), dtype=np.float16) for k in keys}


def write_base_model(path: Path) -> Path:
    save_file(_tensors("model.diffusion_model.input_blocks.0.0.weight", "first_stage_model.decoder.conv_in.weight",
                       "cond_stage_model.transformer.text_model.final_layer_norm.weight"), str(path))
    return path


def write_lora(path: Path) -> Path:
    save_file(_tensors("lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight",
                       "lora_unet_down_blocks_0_attentions_0_proj_in.lora_up.weight"), str(path))
    return path


def image_folder(path: Path, n: int = 2) -> Path:
    path.mkdir(parents=True)
    for i in range(n):
        Image.new("RGB", (8, 8)).save(path / f"{i}.png")
    return path


def test_each_kind_goes_to_its_place(tmp_path: Path):
    images = image_folder(tmp_path / "cats")
    kohya = image_folder(tmp_path / "dogs" / "10_dog").parent  # images only in a kohya N_name subfolder
    diffusers = tmp_path / "sd15"
    (diffusers / "unet").mkdir(parents=True)
    (diffusers / "model_index.json").write_text("{}", encoding="utf-8")
    loose = tmp_path / "one.jpg"
    Image.new("RGB", (8, 8)).save(loose)
    lora = write_lora(tmp_path / "style.safetensors")
    base = write_base_model(tmp_path / "base.safetensors")
    vae = tmp_path / "vae.safetensors"
    save_file(_tensors("decoder.conv_in.weight", "encoder.mid.block_1.conv1.weight"), str(vae))
    empty = tmp_path / "empty"
    empty.mkdir()
    notes = tmp_path / "notes.md"
    notes.write_text("x", encoding="utf-8")
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"\x05\x00")

    plan = classify([images, kohya, diffusers, loose, lora, base, vae, empty, notes, broken, tmp_path / "gone"])

    assert plan.folders == (images.resolve(), kohya.resolve())
    assert plan.images == (loose.resolve(),)
    assert plan.model == diffusers.resolve()
    assert plan.loras == (lora.resolve(),)
    why = {i.path.name: i.why for i in plan.ignored}
    assert set(why) == {"base.safetensors", "vae.safetensors", "empty", "notes.md", "broken.safetensors", "gone"}
    assert why["base.safetensors"].startswith("only one base model")
    assert "neither a base model nor a LoRA" in why["vae.safetensors"]
    assert why["empty"] == "a folder without images"
    assert why["gone"] == "not found"
    assert "too short" in why["broken.safetensors"]


def test_a_folder_of_image_folders_adds_each_and_a_folder_of_models_says_why(tmp_path: Path):
    shoot = tmp_path / "shoot"
    cats, dogs = image_folder(shoot / "cats"), image_folder(shoot / "dogs")
    (shoot / "notes").mkdir()
    diffusers = shoot / "sd15"
    (diffusers / "unet").mkdir(parents=True)
    (diffusers / "model_index.json").write_text("{}", encoding="utf-8")
    image_folder(diffusers / "samples")  # a model folder with images inside is still not a dataset
    models = tmp_path / "models"
    models.mkdir()
    write_lora(models / "style.safetensors")

    plan = classify([shoot, cats, models])

    assert plan.folders == (cats.resolve(), dogs.resolve())  # the dropped subfolder once
    assert plan.model is None and plan.loras == ()
    assert [(i.path.name, i.why) for i in plan.ignored] == [
        ("models", "a folder of model files, not images: drop the model or LoRA files themselves")]


def test_a_single_file_checkpoint_is_the_model_and_the_note_says_what_went_where(tmp_path: Path):
    base = write_base_model(tmp_path / "x.safetensors")
    ckpt = tmp_path / "old.ckpt"
    ckpt.write_bytes(b"PK\x03\x04")
    folders = [image_folder(tmp_path / f"set{i}") for i in range(3)]
    loras = [write_lora(tmp_path / f"l{i}.safetensors") for i in range(2)]
    plan = classify([*folders, base, *loras, *folders])  # duplicates count once
    assert plan.model == base.resolve() and plan.ignored == ()
    assert plan.note() == ("3 folders added to the dataset · base model set to x.safetensors · "
                           "2 LoRAs added to the mixer")
    assert classify([ckpt]).model == ckpt.resolve()
    assert classify([tmp_path / "a.md", tmp_path / "b.md"]).note() == "2 ignored (a.md, b.md): not found"


def test_classify_never_imports_torch(tmp_path: Path):
    write_lora(tmp_path / "l.safetensors")
    code = ("import sys; from studio.dataset.drop_kinds import classify; "
            f"plan = classify([{str(tmp_path / 'l.safetensors')!r}]); "
            "assert plan.loras, plan; assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parent.parent)
