"""The `ss_*` and `modelspec.*` metadata kohya's sd-scripts writes, so WebUIs show and filter our LoRAs.

A1111 decides which checkpoints a LoRA is shown for from `ss_base_model_version` / `ss_v2`, and takes
`ss_output_name` as its alias and `ss_tag_frequency` for its activation-text hints.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from studio import __version__
from studio.config import ProjectConfig
from studio.formats.kohya import metadata_json

BASE_MODEL_VERSION = {"sd1": "sd_v1", "sd2": "sd_v2", "sd2-v": "sd_v2_v", "sdxl": "sdxl_base_v1-0"}
ARCHITECTURE = {"sd1": "stable-diffusion-v1/lora", "sd2": "stable-diffusion-v2-512/lora",
                "sd2-v": "stable-diffusion-v2-768-v/lora", "sdxl": "stable-diffusion-xl-v1-base/lora"}


@dataclass(frozen=True)
class TrainingFacts:
    """What only the finished (or saved) run knows, next to the config."""

    family: str
    prediction: str
    model_name: str
    num_images: int
    steps: int
    epoch: int
    started_at: float
    finished_at: float
    mixed_precision: str = "no"
    tag_frequency: dict[str, dict[str, int]] = field(default_factory=dict)
    dataset_dirs: dict[str, dict[str, int]] = field(default_factory=dict)
    num_reg_images: int = 0
    buckets: dict[str, int] = field(default_factory=dict)  # "WxH" → number of images
    # what the engine derives from the config (the network's kohya description, the schedule's warm-up, the
    # bucket grid): passed in, so the file format does not depend on the training code
    network_module: str = "networks.lora"
    network_args: dict[str, object] = field(default_factory=dict)
    network_dim: int = 0
    network_alpha: float = 0.0
    warmup_steps: int = 0
    bucket_reso: tuple[int, int, int] | None = None  # (min side, max side, step) when bucketing
    base_ema: str = "none"  # the base checkpoint's UNet copy trained on: none (it has one) | ema | non-ema


OPTIMIZER_NAMES = {
    "adamw": "torch.optim.AdamW", "adamw8bit": "bitsandbytes.optim.AdamW8bit", "lion": "lion_pytorch.Lion",
    "prodigy": "prodigyopt.Prodigy", "adafactor": "transformers.optimization.Adafactor",
    "schedule_free_adamw": "schedulefree.AdamWScheduleFree",
}


def training_metadata(cfg: ProjectConfig, facts: TrainingFacts) -> dict[str, str]:
    net, opt, sch, ds, res = cfg.network, cfg.optimizer, cfg.schedule, cfg.dataset, cfg.dataset.resolution
    finished = dt.datetime.fromtimestamp(facts.finished_at, tz=dt.timezone.utc)
    meta = {
        "ss_network_module": facts.network_module,
        "ss_network_dim": str(facts.network_dim),
        "ss_network_alpha": str(facts.network_alpha),
        "ss_network_dropout": str(net.dropout),
        "ss_network_args": metadata_json(facts.network_args),
        "ss_v2": str(facts.family in ("sd2", "sd2-v")),
        "ss_base_model_version": BASE_MODEL_VERSION.get(facts.family, "sd_v1"),
        "ss_sd_model_name": facts.model_name,
        "ss_resolution": f"({res}, {res})",
        "ss_num_train_images": str(facts.num_images),
        "ss_num_reg_images": str(facts.num_reg_images),
        "ss_prior_loss_weight": str(ds.prior_loss_weight),
        "ss_num_epochs": str(facts.epoch),
        "ss_epoch": str(facts.epoch),
        "ss_steps": str(facts.steps),
        "ss_max_train_steps": str(sch.max_steps),
        "ss_learning_rate": str(opt.unet_lr),
        "ss_unet_lr": str(opt.unet_lr),
        "ss_text_encoder_lr": str(opt.text_encoder_lr if net.train_text_encoder else 0.0),
        "ss_optimizer": OPTIMIZER_NAMES.get(opt.name, opt.name),
        "ss_lr_scheduler": sch.lr_scheduler,
        "ss_lr_warmup_steps": str(facts.warmup_steps),
        "ss_gradient_accumulation_steps": str(sch.gradient_accumulation),
        "ss_batch_size_per_device": str(sch.batch_size),
        "ss_mixed_precision": facts.mixed_precision,
        "ss_gradient_checkpointing": str(sch.gradient_checkpointing),
        "ss_seed": str(sch.seed),
        "ss_clip_skip": str(cfg.model.clip_skip),
        "ss_noise_offset": str(sch.noise_offset),
        "ss_multires_noise_iterations": str(sch.pyramid_noise_iterations),
        "ss_multires_noise_discount": str(sch.pyramid_noise_discount),
        "ss_ip_noise_gamma": str(sch.input_perturbation),
        "ss_zero_terminal_snr": str(sch.zero_terminal_snr),
        "ss_min_snr_gamma": str(opt.min_snr_gamma),
        "ss_loss_type": {"mse": "l2", "l1": "l1", "huber": "huber"}[opt.loss],
        "ss_huber_c": str(opt.huber_c),
        "ss_masked_loss": str(ds.masked_loss),
        "ss_enable_bucket": str(ds.bucketing),
        "ss_bucket_no_upscale": str(ds.bucket_no_upscale),
        "ss_bucket_info": metadata_json({"buckets": facts.buckets}),
        "ss_flip_aug": str(ds.flip),
        "ss_shuffle_caption": str(ds.shuffle_captions),
        "ss_keep_tokens": str(ds.keep_tokens),
        "ss_caption_dropout_rate": str(ds.caption_dropout),
        "ss_caption_tag_dropout_rate": str(ds.tag_dropout),
        "ss_max_grad_norm": str(opt.max_grad_norm),
        "ss_v_parameterization": str(facts.prediction == "v_prediction"),
        "ss_tag_frequency": metadata_json(facts.tag_frequency),
        "ss_dataset_dirs": metadata_json(facts.dataset_dirs),
        "ss_output_name": cfg.output.name,
        "ss_training_comment": f"trained with LoRA Studio {__version__}",
        "ss_training_started_at": str(facts.started_at),
        "ss_training_finished_at": str(facts.finished_at),
        "modelspec.sai_model_spec": "1.0.1",
        "modelspec.architecture": ARCHITECTURE.get(facts.family, ARCHITECTURE["sd1"]),
        "modelspec.implementation": ("https://github.com/Stability-AI/generative-models" if facts.family == "sdxl"
                                     else "diffusers"),
        "modelspec.title": cfg.output.name,
        "modelspec.resolution": f"{res}x{res}",
        "modelspec.date": finished.isoformat(timespec="seconds"),
        "modelspec.prediction_type": "v" if facts.prediction == "v_prediction" else "epsilon",
    }
    if ds.bucketing and facts.bucket_reso is not None:
        keys = ("ss_min_bucket_reso", "ss_max_bucket_reso", "ss_bucket_reso_steps")
        meta.update(zip(keys, map(str, facts.bucket_reso)))
    # which UNet copy of a checkpoint with EMA weights the LoRA was trained on (`model.ema`; studio.models.ema)
    meta["studio.base_model_ema"] = facts.base_ema
    if cfg.output.trigger_phrase:
        meta["modelspec.trigger_phrase"] = cfg.output.trigger_phrase
    return meta
