"""Which modules get LoRA, as peft `target_modules` regexes: sd-scripts' default set (every Linear and 1×1
Conv2d in the UNet's transformer blocks), which is what users compare file sizes and ranks against.
"""

from __future__ import annotations

# peft full-matches a string target against each module name
_ATTN = r"attn[12]\.(to_q|to_k|to_v|to_out\.0)"
UNET_TRANSFORMER = (r".*attentions\.\d+\.(proj_in|proj_out|transformer_blocks\.\d+\.(" + _ATTN
                    + r"|ff\.net\.0\.proj|ff\.net\.2))")
UNET_ATTENTION = r".*attentions\.\d+\.transformer_blocks\.\d+\." + _ATTN
TEXT_ENCODER = r".*encoder\.layers\.\d+\.(self_attn\.(q_proj|k_proj|v_proj|out_proj)|mlp\.(fc1|fc2))"


def unet_targets(kind: str) -> str:
    return {"transformer": UNET_TRANSFORMER, "attention": UNET_ATTENTION}[kind]
