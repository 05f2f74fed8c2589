"""Text conditioning for SD 1.x/2.x and SDXL, the way the original models were trained.

SD 1.x/2.x: the text encoder's last hidden state (or the N-th last with clip skip, followed by the
final layer norm, as sd-scripts and the WebUIs do). SDXL: the penultimate hidden states of both
encoders concatenated, the pooled output of the second, and the size/crop "time ids".
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def tokenize(tokenizer, captions: Sequence[str]) -> torch.Tensor:
    return tokenizer(list(captions), padding="max_length", max_length=tokenizer.model_max_length,
                     truncation=True, return_tensors="pt").input_ids


def encode_sd(text_encoder, ids: torch.Tensor, clip_skip: int = 1) -> torch.Tensor:
    if clip_skip <= 1:
        return text_encoder(ids, output_hidden_states=False)[0]
    out = text_encoder(ids, output_hidden_states=True)
    hidden = out.hidden_states[-clip_skip]
    # transformers 5 flattened CLIPTextModel; older versions keep the layers under `text_model`
    return getattr(text_encoder, "text_model", text_encoder).final_layer_norm(hidden)


def encode_sdxl(text_encoders, ids: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    hidden_parts, pooled = [], None
    for encoder, token_ids in zip(text_encoders, ids):
        out = encoder(token_ids, output_hidden_states=True)
        hidden_parts.append(out.hidden_states[-2])
        pooled = out[0]  # the second encoder's projected pooled output (text_embeds)
    return torch.cat(hidden_parts, dim=-1), pooled


def sdxl_time_ids(original: Sequence[tuple[int, int]], crops: Sequence[tuple[int, int]],
                  target: tuple[int, int]) -> torch.Tensor:
    rows = [list(o) + list(c) + list(target) for o, c in zip(original, crops)]
    return torch.tensor(rows, dtype=torch.float32)


class TextConditioner:
    """Encodes captions for one model; caches embeddings when the encoders are frozen."""

    def __init__(self, components, *, clip_skip: int, device: torch.device, cache: bool) -> None:
        self.c = components
        self.clip_skip = clip_skip
        self.device = device
        self.cache_enabled = cache
        self._cache: dict[str, tuple[torch.Tensor, torch.Tensor | None]] = {}

    def _encode(self, captions: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor | None]:
        ids = [tokenize(t, captions).to(self.device) for t in self.c.tokenizers]
        if self.c.is_sdxl:
            return encode_sdxl(self.c.text_encoders, ids)
        return encode_sd(self.c.text_encoders[0], ids[0], self.clip_skip), None

    def __call__(self, captions: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor | None]:
        if not self.cache_enabled:
            return self._encode(captions)
        missing = [c for c in dict.fromkeys(captions) if c not in self._cache]
        if missing:
            with torch.no_grad():
                hidden, pooled = self._encode(missing)
            for i, cap in enumerate(missing):
                self._cache[cap] = (hidden[i], None if pooled is None else pooled[i])
        hidden = torch.stack([self._cache[c][0] for c in captions])
        pooled = None if self.c.is_sdxl is False else torch.stack([self._cache[c][1] for c in captions])
        return hidden, pooled
