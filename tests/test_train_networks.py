"""Network types: LoCon, DoRA, rsLoRA, PiSSA, LoHa, LoKr, and the low-VRAM (quantised base) mode.

Where diffusers loads the layout (LoRA, LoCon) the export is loaded as users load it, with no key
warnings, and must render what the trained peft model renders. diffusers refuses LoHa/LoKr kohya files,
so for those each module's ΔW, as a loader computes it from our file, is compared with peft's own. diffusers
drops DoRA's `dora_scale`, so DoRA is checked by the weights ComfyUI and Forge build from the file.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

from studio.config import NetworkConfig
from studio.events import Checkpoint, Failed, Finished
from studio.train.engine import run_training
from tests.conftest import tiny_config
from tests.diffusers_helpers import load_lora_collecting_messages, render, sd_pipeline


def _train(model, data, out, **network):
    cfg = tiny_config(model, data, out, network={"rank": 4, "alpha": 2.0, **network},
                      optimizer={"unet_lr": 5e-3, "text_encoder_lr": 5e-3},
                      schedule={"max_steps": 3, "batch_size": 2}, output={"dtype": "fp32", "directory": str(out)})
    events = list(run_training(cfg))
    assert isinstance(events[-1], Finished), events[-1]
    checkpoint = Path([e for e in events if isinstance(e, Checkpoint)][-1].path)
    return cfg, Path(events[-1].outputs[-1]), checkpoint


def _load_in_diffusers(model: Path, lora: Path):

    pipe = sd_pipeline(model)
    messages = load_lora_collecting_messages(pipe, lora)
    # the text encoder is not trained here, and diffusers says so: not a key problem
    messages = [m for m in messages if not m.startswith("No LoRA keys associated to CLIPTextModel")]
    problems = [m for m in messages if any(s in m.lower() for s in ("unexpected", "missing", "not loaded",
                                                                   "could not", "dropped", "ignored"))]
    assert problems == []
    return pipe


def _peft_reference(model: Path, cfg, checkpoint: Path, *, pissa: bool = False):
    """The trained model itself: the base with the same peft adapter and the checkpoint's weights."""
    from peft.utils import set_peft_model_state_dict

    from studio.train.checkpoint import load_adapters
    from studio.train.networks import adapter_config, pissa_init_model, unet_target_regex

    ref = sd_pipeline(model)
    net = cfg.network
    ref.unet.add_adapter(adapter_config(net, unet_target_regex(net), convs=net.type != "lora"))
    if pissa:
        pissa_init_model(ref.unet)
    set_peft_model_state_dict(ref.unet, load_adapters(checkpoint)["lora_unet"])
    return ref


def _assert_same_render(model, lora, cfg, checkpoint, *, pissa=False):
    base = render(sd_pipeline(model))
    with_file = render(_load_in_diffusers(model, lora))
    with_peft = render(_peft_reference(model, cfg, checkpoint, pissa=pissa))
    change = (with_file - base).abs().max().item()
    mismatch = (with_file - with_peft).abs().max().item()
    assert change > 1e-3, "the LoRA did not change the image"
    assert mismatch < 0.01 * change + 1e-4, (mismatch, change)


def _keys(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    with safe_open(str(path), "pt") as fh:
        return {k: fh.get_tensor(k) for k in fh.keys()}, fh.metadata()


@pytest.mark.slow  # trains or renders: left out of the fast subset (-m "not slow")
def test_locon_adapts_the_convolutions_with_their_own_rank_and_loads_in_diffusers(tiny_sd1, image_folder, tmp_path):
    cfg, lora, checkpoint = _train(tiny_sd1, image_folder, tmp_path, type="locon", conv_rank=2, conv_alpha=1.0)
    tensors, meta = _keys(lora)
    conv = "lora_unet_down_blocks_0_resnets_0_conv1"
    assert tensors[f"{conv}.lora_down.weight"].shape[:1] + tensors[f"{conv}.lora_down.weight"].shape[2:] == (2, 3, 3)
    assert tensors[f"{conv}.lora_up.weight"].shape[1:] == (2, 1, 1)
    assert tensors[f"{conv}.alpha"].item() == 1.0
    for name in ("lora_unet_down_blocks_0_resnets_0_time_emb_proj", "lora_unet_down_blocks_0_resnets_0_conv2",
                 "lora_unet_down_blocks_0_downsamplers_0_conv", "lora_unet_up_blocks_0_upsamplers_0_conv",
                 "lora_unet_mid_block_resnets_1_conv1", "lora_unet_up_blocks_1_resnets_0_conv_shortcut"):
        assert f"{name}.lora_down.weight" in tensors, name
    shortcut = "lora_unet_up_blocks_1_resnets_0_conv_shortcut"
    assert tensors[f"{shortcut}.lora_down.weight"].shape[0] == 4 and tensors[f"{shortcut}.alpha"].item() == 2.0
    assert meta["ss_network_module"] == "networks.lora"
    assert json.loads(meta["ss_network_args"]) == {"targets": "transformer", "conv_dim": "2", "conv_alpha": "1.0"}
    _assert_same_render(tiny_sd1, lora, cfg, checkpoint)


@pytest.mark.slow  # trains or renders: left out of the fast subset (-m "not slow")
def test_dora_export_rebuilds_peft_weights_in_comfyui_and_forge(tiny_sd1, image_folder, tmp_path):
    """LoCon + DoRA, so Linear, 1×1 and 3×3 conv layers are all covered. Every UNet layer's weight, as ComfyUI
    and Forge build it from our file (`tests/dora_consumers.py`), equals peft's merged DoRA weight.

    diffusers does not apply kohya-layout DoRA for SD/SDXL: `StableDiffusionLoraLoaderMixin.lora_state_dict`
    (`diffusers/loaders/lora_pipeline.py`, 0.42 and main) drops every `dora_scale` key with a warning before
    converting, so the file loads there as the plain LoRA B·A (its `_convert_non_diffusers_lora_to_diffusers`
    mapping of `dora_scale` to `lora_magnitude_vector` is never reached from these loaders). Pinned below."""
    from diffusers import UNet2DConditionModel
    from peft.utils import set_peft_model_state_dict

    from studio.formats.names import kohya_name_for
    from studio.train.checkpoint import load_adapters
    from studio.train.networks import adapter_config, tuner_layers, unet_target_regex
    from tests import dora_consumers

    cfg, lora, checkpoint = _train(tiny_sd1, image_folder, tmp_path, dora=True, type="locon", conv_rank=2)
    tensors, meta = _keys(lora)
    assert meta["ss_network_module"] == "lycoris.kohya"
    assert json.loads(meta["ss_network_args"])["dora_wd"] == "True"
    unet = UNet2DConditionModel.from_pretrained(tiny_sd1, subfolder="unet")
    unet.add_adapter(adapter_config(cfg.network, unet_target_regex(cfg.network), convs=True))
    set_peft_model_state_dict(unet, load_adapters(checkpoint)["lora_unet"])
    moved, kinds = 0.0, set()
    layers = tuner_layers(unet)
    assert len([k for k in tensors if k.endswith(".dora_scale")]) == len(layers) > 192
    for path, layer in layers.items():
        base = layer.get_base_layer().weight.detach().clone().float()
        layer.merge(adapter_names=["default"])
        expected = layer.get_base_layer().weight.detach().float()
        name = kohya_name_for("unet", path, "sd1")
        assert tensors[f"{name}.dora_scale"].shape == (base.shape[0],) + (1,) * (base.dim() - 1)
        for consumer in (dora_consumers.comfyui, dora_consumers.forge):
            got = consumer(tensors, name, base)
            assert torch.allclose(got, expected, atol=1e-5, rtol=1e-5), (path, (got - expected).abs().max())
        moved = max(moved, (expected - base).abs().max().item())
        kinds.add(tuple(base.shape[2:]))
    assert kinds == {(), (1, 1), (3, 3)}
    assert moved > 1e-4  # training changed the weights

    pipe = sd_pipeline(tiny_sd1)
    messages = load_lora_collecting_messages(pipe, lora)
    dropped = [m for m in messages if "dora_scale" in m]
    others = [m for m in messages if m not in dropped and not m.startswith("No LoRA keys associated to CLIP")]
    assert dropped and others == []  # diffusers drops the magnitudes (and says so); every other key loads
    assert not any("lora_magnitude_vector" in n for n, _ in pipe.unet.named_parameters())


@pytest.mark.slow  # trains or renders: left out of the fast subset (-m "not slow")
def test_rslora_folds_its_scale_into_the_exported_alpha(tiny_sd1, image_folder, tmp_path):
    cfg, lora, checkpoint = _train(tiny_sd1, image_folder, tmp_path, rslora=True, rank=4, alpha=2.0)
    tensors, meta = _keys(lora)
    alphas = {v.item() for k, v in tensors.items() if k.endswith(".alpha")}
    assert len(alphas) == 1 and alphas.pop() == pytest.approx(2.0 * math.sqrt(4))  # alpha/rank = alpha/√rank
    assert float(meta["ss_network_alpha"]) == pytest.approx(4.0)
    _assert_same_render(tiny_sd1, lora, cfg, checkpoint)


def test_our_pissa_init_equals_peft_on_linear_layers():
    from peft import LoraConfig, get_peft_model

    from studio.train.networks import pissa_init_model

    def model():
        torch.manual_seed(0)
        return torch.nn.Sequential(torch.nn.Linear(24, 16), torch.nn.Linear(16, 12))

    theirs = get_peft_model(model(), LoraConfig(r=4, lora_alpha=8, target_modules=["0", "1"],
                                                init_lora_weights="pissa"))
    ours = get_peft_model(model(), LoraConfig(r=4, lora_alpha=8, target_modules=["0", "1"]))
    assert pissa_init_model(ours) == 2
    a, b = dict(theirs.named_parameters()), dict(ours.named_parameters())
    for name in a:
        assert torch.allclose(a[name], b[name], atol=1e-5), name
    x = torch.randn(5, 24)
    assert torch.allclose(ours(x), model()(x), atol=1e-5)  # the sum of base and adapter is the original


@pytest.mark.slow  # trains or renders: left out of the fast subset (-m "not slow")
def test_pissa_export_is_the_change_from_the_start_at_twice_the_rank(tiny_sd1, image_folder, tmp_path):
    cfg, lora, checkpoint = _train(tiny_sd1, image_folder, tmp_path, init="pissa", rank=2, alpha=2.0)
    tensors, meta = _keys(lora)
    downs = [v for k, v in tensors.items() if k.endswith("lora_down.weight")]
    assert {d.shape[0] for d in downs} == {4}
    assert meta["ss_network_dim"] == "4" and float(meta["ss_network_alpha"]) == 4.0
    assert (checkpoint / "extra" / "initial_lora_unet.safetensors").is_file()
    _assert_same_render(tiny_sd1, lora, cfg, checkpoint, pissa=True)


def _delta_weights_match(lora: Path, model_dir: Path, cfg, checkpoint: Path) -> int:
    """Each module's ΔW from our file (as LyCORIS loaders compute it) against peft's get_delta_weight."""
    from diffusers import UNet2DConditionModel
    from peft.utils import set_peft_model_state_dict

    from studio.formats.names import kohya_name_for
    from studio.formats.reader import read_lora
    from studio.train.checkpoint import load_adapters
    from studio.train.networks import adapter_config, tuner_layers, unet_target_regex

    unet = UNet2DConditionModel.from_pretrained(model_dir, subfolder="unet")
    unet.add_adapter(adapter_config(cfg.network, unet_target_regex(cfg.network), convs=True))
    set_peft_model_state_dict(unet, load_adapters(checkpoint)["lora_unet"])
    lf = read_lora(lora)
    checked = convs = 0
    for path, layer in tuner_layers(unet).items():
        expected = layer.get_delta_weight("default").float()
        module = lf.modules[kohya_name_for("unet", path, "sd1")]
        got = module.delta_weight(tuple(layer.get_base_layer().weight.shape))
        assert torch.allclose(got, expected, atol=1e-6, rtol=1e-4), path
        checked += 1
        convs += getattr(layer.get_base_layer(), "kernel_size", (1, 1)) == (3, 3)
    assert convs > 20  # the ResNet 3×3 convolutions are adapted too
    return checked


@pytest.mark.parametrize("kind, keys", [("loha", {"hada_w1_a", "hada_w1_b", "hada_w2_a", "hada_w2_b", "alpha"}),
                                        ("lokr", {"lokr_w1", "lokr_w2", "lokr_w2_a", "lokr_w2_b", "alpha"})])
@pytest.mark.slow  # trains or renders: left out of the fast subset (-m "not slow")
def test_loha_and_lokr_export_the_lycoris_layout_with_peft_delta_weights(tiny_sd1, image_folder, tmp_path, kind,
                                                                         keys):
    cfg, lora, checkpoint = _train(tiny_sd1, image_folder, tmp_path, type=kind, conv_rank=2)
    tensors, meta = _keys(lora)
    suffixes = {k.split(".", 1)[1] for k in tensors}
    assert suffixes == keys
    assert meta["ss_network_module"] == "lycoris.kohya"
    args = json.loads(meta["ss_network_args"])
    assert args["algo"] == kind and args["conv_dim"] == "2"
    names = {k.split(".", 1)[0] for k in tensors}
    assert "lora_unet_down_blocks_0_resnets_0_conv1" in names
    assert _delta_weights_match(lora, tiny_sd1, cfg, checkpoint) == len(names) > 192
    # the weights moved: a LyCORIS loader applies a non-zero update
    from studio.formats.reader import read_lora

    assert max(m.delta_weight().abs().max().item() for m in read_lora(lora).modules.values()) > 0


def test_lycoris_types_refuse_lora_only_options(tiny_sd1, image_folder, tmp_path):
    for extra, word in (({"dora": True}, "dora"), ({"rslora": True}, "rslora"), ({"init": "pissa"}, "init")):
        events = list(run_training(tiny_config(tiny_sd1, image_folder, tmp_path,
                                               network={"type": "loha", **extra})))
        assert len(events) == 1 and isinstance(events[0], Failed), extra
        assert word in events[0].error and "not loha" in events[0].error


def test_low_vram_mode_is_refused_without_cuda(tiny_sd1, image_folder, tmp_path):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    events = list(run_training(tiny_config(tiny_sd1, image_folder, tmp_path, network={"base_quantization": "nf4"})))
    assert isinstance(events[-1], Failed) and "needs an NVIDIA GPU" in events[-1].error
    assert "base_quantization" in events[-1].hint


@pytest.mark.parametrize("mode", ["nf4", "int8"])
def test_quantised_base_trains_the_adapter_on_top(tiny_sd1, mode):
    """The quantisation itself works wherever bitsandbytes does (its CPU kernels included)."""
    pytest.importorskip("bitsandbytes")
    from diffusers import UNet2DConditionModel

    from studio.train.networks import add_adapters
    from studio.train.quantize import quantize_linear_layers

    full = UNet2DConditionModel.from_pretrained(tiny_sd1, subfolder="unet")
    unet = UNet2DConditionModel.from_pretrained(tiny_sd1, subfolder="unet")
    n = quantize_linear_layers(unet, mode, compute_dtype=torch.float32, device=torch.device("cpu"))
    assert n > 50 and not any(type(m) is torch.nn.Linear for m in unet.modules())
    add_adapters(unet, [], NetworkConfig(rank=4, alpha=4.0), train_text_encoder=False, seed=0)
    gen = torch.Generator().manual_seed(0)
    x, t = torch.randn(1, 4, 8, 8, generator=gen), torch.tensor([500])
    hidden = torch.randn(1, 77, 32, generator=gen)
    with torch.no_grad():
        ref = full(x, t, encoder_hidden_states=hidden).sample
    out = unet(x, t, encoder_hidden_states=hidden).sample
    assert (out - ref).abs().mean() < 0.1 * ref.abs().mean()  # quantisation error, not a different model
    out.pow(2).mean().backward()
    trainable = [p for p in unet.parameters() if p.requires_grad]
    assert trainable and all(p.dtype == torch.float32 for p in trainable)
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in trainable)
    assert all(p.grad is None for p in unet.parameters() if not p.requires_grad)


@pytest.mark.slow  # trains or renders: left out of the fast subset (-m "not slow")
def test_sdxl_locon_exports_sgm_resnet_names_that_diffusers_loads(tiny_sdxl, image_folder, tmp_path):
    from diffusers import StableDiffusionXLPipeline

    cfg = tiny_config(tiny_sdxl, image_folder, tmp_path, network={"type": "locon", "rank": 2, "alpha": 2.0},
                      optimizer={"unet_lr": 5e-3}, schedule={"max_steps": 2, "batch_size": 2})
    events = list(run_training(cfg))
    assert isinstance(events[-1], Finished), events[-1]
    lora = Path(events[-1].outputs[-1])
    tensors, _ = _keys(lora)
    names = {k.split(".", 1)[0] for k in tensors}
    for name in ("lora_unet_input_blocks_4_0_in_layers_2", "lora_unet_input_blocks_4_0_emb_layers_1",
                 "lora_unet_input_blocks_3_0_op", "lora_unet_middle_block_2_out_layers_3",
                 "lora_unet_output_blocks_2_2_conv", "lora_unet_output_blocks_3_0_skip_connection"):
        assert name in names, name

    def render(pipe):
        gen = torch.Generator().manual_seed(3)
        return pipe(prompt="photo", num_inference_steps=2, height=64, width=64, generator=gen, output_type="pt",
                    guidance_scale=5.0).images[0]

    pipe = StableDiffusionXLPipeline.from_pretrained(tiny_sdxl, local_files_only=True)
    pipe.set_progress_bar_config(disable=True)
    base = render(pipe)
    messages = load_lora_collecting_messages(pipe, lora)
    assert [m for m in messages if "unexpected" in m.lower() and "CLIPTextModel" not in m] == []
    loaded = {n for n, _ in pipe.unet.named_modules() if n.endswith(("resnets.0.conv1", "downsamplers.0.conv"))}
    adapted = {n for n, m in pipe.unet.named_modules() if hasattr(m, "lora_A") and len(m.lora_A)}
    assert loaded and loaded <= adapted  # the convolutions got their LoRA
    assert (render(pipe) - base).abs().max().item() > 1e-4
