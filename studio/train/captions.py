"""Caption augmentation: shuffled tags, kept leading tags, tag dropout and caption dropout.

Tag-style captions (`trigger, 1girl, red hair, smiling`) carry no meaning in their order, yet a model
trained on one fixed order learns it, and learns to need every tag. Shuffling the tags and dropping some
each time an image is used (sd-scripts' `shuffle_caption`, `caption_tag_dropout_rate`) spreads what is
learnt over the tags; keeping the first N in place keeps the trigger word first. Dropping the whole
caption now and then (`caption_dropout_rate`) keeps the unconditional prediction that classifier-free
guidance relies on.

Every random choice comes from the `random.Random` passed in, which the data order seeds from
(seed, epoch, position), so a resumed run draws the same captions as an uninterrupted one.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from studio.dataset.tags import split_tags


@dataclass(frozen=True)
class CaptionPolicy:
    shuffle: bool = False
    keep_tokens: int = 0
    tag_dropout: float = 0.0
    caption_dropout: float = 0.0
    separator: str = ","

    @property
    def changes_captions(self) -> bool:
        return self.shuffle or self.tag_dropout > 0 or self.caption_dropout > 0


def augment_caption(caption: str, policy: CaptionPolicy, rng: random.Random) -> str:
    """The caption to train on this time. Draws from `rng` in a fixed order, whether or not an option
    is on, only for the options that are on — so turning one on does not change the others' draws."""
    if not policy.changes_captions:
        return caption
    if policy.caption_dropout > 0 and rng.random() < policy.caption_dropout:
        return ""
    tags = split_tags(caption, policy.separator)
    kept, rest = tags[:policy.keep_tokens], tags[policy.keep_tokens:]
    if policy.tag_dropout > 0:
        rest = [t for t in rest if rng.random() >= policy.tag_dropout]
    if policy.shuffle:
        rng.shuffle(rest)
    return (policy.separator + " ").join(kept + rest)
