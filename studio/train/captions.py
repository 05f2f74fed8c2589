"""Caption augmentation: shuffled tags, kept leading tags, tag dropout and caption dropout.

A model trained on tags in one fixed order learns the order, and to need every tag; shuffling and dropping
some each time spreads what is learnt (keeping the first N keeps the trigger word first). Dropping the whole
caption now and then keeps the unconditional prediction that classifier-free guidance relies on. Every
draw comes from the `random.Random` passed in, seeded by the data position, so resumes draw the same.
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


def augment_caption(caption: str, policy: CaptionPolicy, rng: random.Random) -> str:
    """The caption to train on this time. Draws from `rng` in a fixed order, whether or not an option
    is on, only for the options that are on — so turning one on does not change the others' draws."""
    if not (policy.shuffle or policy.tag_dropout > 0 or policy.caption_dropout > 0):
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
