"""Text conditioning for SD 1.x/2.x and SDXL, the way the original models were trained.

SD 1.x/2.x: the text encoder's last hidden state (or the N-th last with clip skip, followed by the
final layer norm, as sd-scripts and the WebUIs do). SDXL: the penultimate hidden states of both
encoders concatenated, the pooled output of the second, and the size/crop "time ids".
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def sdxl_time_ids(original: Sequence[tuple[int, int]], crops: Sequence[tuple[int, int]],
                  target: tuple[int, int]) -> torch.Tensor:
    rows = [list(o) + list(c) + list(target) for o, c in zip(original, crops)]
    return torch.tensor(rows, dtype=torch.float32)


class TextConditioner:
    def __init__(self, components, *, clip_skip: int, device: torch.device, cache: bool) -> None:
        self.c = components
        self.clip_skip = clip_skip
        self.device = device
        self.cache_enabled = cache
        self._cache: dict[str, tuple[torch.Tensor, torch.Tensor | None]] = {}

    def _encode(self, captions: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor | None]:
        ids = [t(list(captions), padding="max_length", max_length=t.model_max_length, truncation=True,
                 return_tensors="pt").input_ids.to(self.device) for t in self.c.tokenizers]
        if self.c.is_sdxl:  # the second encoder's output [0] is its projected pooled output (text_embeds)
            outs = [encoder(i, output_hidden_states=True) for encoder, i in zip(self.c.text_encoders, ids)]
            return torch.cat([out.hidden_states[-2] for out in outs], dim=-1), outs[-1][0]
        encoder = self.c.text_encoders[0]
        if self.clip_skip <= 1:
            return encoder(ids[0], output_hidden_states=False)[0], None
        hidden = encoder(ids[0], output_hidden_states=True).hidden_states[-self.clip_skip]
        # transformers 5 flattened CLIPTextModel; older versions keep the layers under `text_model`
        return getattr(encoder, "text_model", encoder).final_layer_norm(hidden), None

    def __call__(self, captions: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor | None]:
        if not self.cache_enabled:
            return self._encode(captions)
        missing = [c for c in dict.fromkeys(captions) if c not in self._cache]
        if missing:
            with torch.no_grad():
                hidden, pooled = self._encode(missing)
            for i, cap in enumerate(missing):
                self._cache[cap] = (hidden[i], None if pooled is None else pooled[i])
        return (torch.stack([self._cache[c][0] for c in captions]),
                None if self.c.is_sdxl is False else torch.stack([self._cache[c][1] for c in captions]))
