"""DoRA export: the `dora_scale` we write makes ComfyUI and Forge rebuild peft's DoRA weights exactly.

peft: W' = m · (W + ΔW) / ‖W + ΔW‖_row. ComfyUI and Forge read a (out, 1[, 1, 1]) `dora_scale` as output-axis
DoRA but divide by the base weight's norm ‖W‖_row, so we write m · ‖W‖ / ‖W + ΔW‖ (see
`studio.formats.kohya.comfyui_dora_scale`). The consumers' formulas are re-stated in `tests/dora_consumers.py`.
The training-level check (a real run, every UNet layer, and what diffusers does with the file) is in
`tests/test_train_networks.py`.
"""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from studio.errors import LoraFormatError
from studio.formats.kohya import lora_file_from_peft, to_tensors
from studio.formats.names import kohya_name_for
from studio.train.export import base_weights
from studio.train.networks import layer_scales, tuner_layers
from tests import dora_consumers

LAYERS = ("lin", "pw", "conv")  # Linear, 1×1 conv, 3×3 conv


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(24, 16)
        self.pw = nn.Conv2d(16, 12, 1)
        self.conv = nn.Conv2d(12, 8, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.lin(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        return self.conv(self.pw(x))


def _trained_dora(seed: int = 0) -> tuple[Net, Net]:
    """(plain base model, the same model with a DoRA adapter whose factors and magnitudes have moved)."""
    from peft import LoraConfig, inject_adapter_in_model

    torch.manual_seed(seed)
    base = Net()
    model = inject_adapter_in_model(LoraConfig(r=4, lora_alpha=8, target_modules=list(LAYERS), use_dora=True),
                                    copy.deepcopy(base))
    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_magnitude_vector" in name:
                p.mul_(1 + 0.2 * torch.randn(p.shape, generator=gen))
            elif "lora_" in name:
                p.copy_(0.3 * torch.randn(p.shape, generator=gen))
    return base, model


def _export(model: Net, dtype: torch.dtype = torch.float32) -> dict[str, torch.Tensor]:
    from peft.utils import get_peft_model_state_dict

    lf = lora_file_from_peft({"lora_unet": get_peft_model_state_dict(model)}, 8.0, "sd1",
                             scales={"lora_unet": layer_scales(model)}, base_weight=base_weights({"lora_unet": model}))
    return to_tensors(lf, dtype)


def _peft_merged(model: Net) -> dict[str, torch.Tensor]:
    merged = copy.deepcopy(model)
    out = {}
    for path, layer in tuner_layers(merged).items():
        layer.merge(adapter_names=["default"])
        out[path] = layer.get_base_layer().weight.detach().float()
    return out


def test_comfyui_and_forge_rebuild_peft_dora_weights_for_linear_and_conv_layers():
    base, model = _trained_dora()
    tensors = _export(model)
    merged = _peft_merged(model)
    for path in LAYERS:
        name = kohya_name_for("unet", path, "sd1")
        w = getattr(base, path).weight
        scale = tensors[f"{name}.dora_scale"]
        assert scale.shape == (w.shape[0],) + (1,) * (w.dim() - 1), path  # output-axis to ComfyUI and Forge
        assert not torch.allclose(merged[path], w, atol=1e-3)  # the adapter does change the layer
        for consumer in (dora_consumers.comfyui, dora_consumers.forge):
            got = consumer(tensors, name, w)
            assert torch.allclose(got, merged[path], atol=1e-5, rtol=1e-5), (path, (got - merged[path]).abs().max())
            # strength s: ComfyUI/Forge move linearly from W towards peft's weight
            half = consumer(tensors, name, w, strength=0.5)
            assert torch.allclose(half, w + 0.5 * (merged[path] - w), atol=1e-5, rtol=1e-5), path


def test_the_comfyui_weights_render_what_the_peft_model_renders():
    base, model = _trained_dora(seed=3)
    tensors = _export(model)
    patched = copy.deepcopy(base)
    with torch.no_grad():
        for path in LAYERS:
            layer = getattr(patched, path)
            layer.weight.copy_(dora_consumers.comfyui(tensors, kohya_name_for("unet", path, "sd1"), layer.weight))
    x = torch.randn(2, 24, 5, 5, generator=torch.Generator().manual_seed(9))
    with torch.no_grad():
        want, got, plain = model(x), patched(x), base(x)
    assert (want - plain).abs().max() > 1e-2
    assert torch.allclose(got, want, atol=1e-4, rtol=1e-4), (got - want).abs().max()


def test_fp16_export_stays_within_half_precision():
    base, model = _trained_dora(seed=5)
    tensors = _export(model, torch.float16)
    merged = _peft_merged(model)
    for path in LAYERS:
        w = getattr(base, path).weight
        got = dora_consumers.comfyui(tensors, kohya_name_for("unet", path, "sd1"), w)
        assert torch.allclose(got, merged[path], atol=5e-3, rtol=5e-3), path


def test_where_the_file_does_not_render_peft_exactly():
    """Documented in docs/TRAINING.md: loaders that normalise by ‖W + ΔW‖ (LyCORIS's own merge, open ComfyUI
    PR #15458) get peft's weight with each output row scaled by ‖W‖/‖W + ΔW‖; A1111 normalises per input
    column whatever the scale's shape, which no output-axis DoRA survives."""
    base, model = _trained_dora(seed=7)
    tensors = _export(model)
    merged = _peft_merged(model)
    for path in LAYERS:
        name = kohya_name_for("unet", path, "sd1")
        w = getattr(base, path).weight.detach().float()
        _, combined, _ = dora_consumers._parts(tensors, name, w)
        ratio = dora_consumers._row_norm(w) / dora_consumers._row_norm(combined)
        assert torch.allclose(dora_consumers.lycoris_reference(tensors, name, w), merged[path] * ratio,
                              atol=1e-5, rtol=1e-4), path
        assert (ratio - 1).abs().max() > 1e-3  # a real difference, which the test would otherwise hide
        a1111 = dora_consumers.a1111(tensors, name, w)
        assert (a1111 - merged[path]).abs().max() > 0.05 * merged[path].abs().max(), path


def test_dora_export_needs_the_base_weights():
    from peft.utils import get_peft_model_state_dict

    _, model = _trained_dora()
    with pytest.raises(LoraFormatError, match="base model"):
        lora_file_from_peft({"lora_unet": get_peft_model_state_dict(model)}, 8.0, "sd1",
                            scales={"lora_unet": layer_scales(model)})
