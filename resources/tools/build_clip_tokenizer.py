"""Rebuild the CLIP BPE tokenizer files (49,408 tokens) that SD 1.x, SD 2.x and SDXL all use.

Run once; the output is committed under `resources/tokenizers/clip/`, so the app never downloads it.
The source is `bpe_simple_vocab_16e6.txt.gz`, which the MIT-licensed `open_clip_torch` wheel ships:

    pip download --no-deps open_clip_torch -d /tmp/oc
    python resources/tools/build_clip_tokenizer.py /tmp/oc/open_clip_torch-*.whl

The vocabulary is built the way CLIP's own `simple_tokenizer.py` builds it: the 256 byte symbols (in
CLIP's byte-to-unicode order, printable bytes first), the same symbols with `</w>`, one token per merge
for the first 48,894 merges, then `<|startoftext|>` and `<|endoftext|>`. The result is checked against the
ids every SD tokenizer gives for "a photo of a cat".
"""

from __future__ import annotations

import gzip
import io
import json
import sys
import zipfile
from pathlib import Path

N_MERGES = 49152 - 256 - 2  # CLIP keeps this many merges: the vocab ends at 49,408 tokens
EXPECTED = {"a photo of a cat": [49406, 320, 1125, 539, 320, 2368, 49407]}
OUT = Path(__file__).resolve().parent.parent / "tokenizers" / "clip"


def clip_byte_symbols() -> list[str]:
    """CLIP's byte → printable-character table, in CLIP's order (printable bytes first)."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    rest = [b for b in range(256) if b not in printable]
    return [chr(b) for b in printable] + [chr(256 + i) for i in range(len(rest))]


def read_bpe_lines(source: Path) -> list[str]:
    if source.suffix == ".whl":
        with zipfile.ZipFile(source) as wheel:
            name = next(n for n in wheel.namelist() if n.endswith("bpe_simple_vocab_16e6.txt.gz"))
            data = wheel.read(name)
    else:
        data = source.read_bytes()
    return gzip.GzipFile(fileobj=io.BytesIO(data)).read().decode("utf-8").split("\n")


def build(source: Path) -> tuple[dict[str, int], list[str]]:
    lines = read_bpe_lines(source)
    merges = lines[1:N_MERGES + 1]  # line 0 is the file's version header
    symbols = clip_byte_symbols()
    tokens = symbols + [s + "</w>" for s in symbols] + ["".join(m.split(" ")) for m in merges]
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    vocab = {t: i for i, t in enumerate(tokens)}
    assert len(vocab) == len(tokens) == 49408, len(vocab)
    return vocab, merges


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__)
        return 2
    vocab, merges = build(Path(argv[1]))
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False, separators=(",", ":")), encoding="utf-8")
    (OUT / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")

    from transformers import CLIPTokenizer

    tok = CLIPTokenizer(vocab=vocab, merges=[tuple(m.split(" ")) for m in merges])
    for text, ids in EXPECTED.items():
        got = tok(text).input_ids
        assert got == ids, (text, got)
    print(f"wrote {OUT} ({len(vocab)} tokens, {len(merges)} merges); checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
