"""CLIP's byte-level BPE tokenizer, from a ``tokenizer.json`` or ``vocab.json`` + ``merges.txt``.

Follows OpenAI CLIP's ``simple_tokenizer``: lower case, collapsed white space,
words split by a regular expression, ``</w>`` marking a word's end, merges by
rank, ``<|startoftext|>`` and ``<|endoftext|>`` around the tokens, zero padding
to the context length. (The letter/number classes use Python's ``re`` instead
of the ``regex`` module's ``\\p{L}``/``\\p{N}``; they differ only on rare
characters such as ``_``.)

Example:
    >>> tok = ClipTokenizer({"<|startoftext|>": 1, "<|endoftext|>": 2, "a</w>": 3}, [])
    >>> tok.encode("A", context_length=5)
    [1, 3, 2, 0, 0]
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

SOT = "<|startoftext|>"
EOT = "<|endoftext|>"
_PATTERN = re.compile(
    r"<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[^\W\d_]+|\d|[^\s\w]+|_+",
    re.IGNORECASE,
)


@functools.lru_cache(maxsize=1)
def bytes_to_unicode() -> dict[int, str]:
    """Map every byte to a printable character (GPT-2/CLIP byte-level BPE)."""
    bs = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs), strict=True))


class ClipTokenizer:
    """Byte-level BPE with CLIP's conventions.

    Args:
        vocab: token -> id (must hold ``<|startoftext|>`` and ``<|endoftext|>``).
        merges: merge pairs in rank order.

    Raises:
        ValueError: the vocabulary lacks the start or end token.
    """

    def __init__(self, vocab: Mapping[str, int], merges: Sequence[tuple[str, str]]) -> None:
        if SOT not in vocab or EOT not in vocab:
            raise ValueError("A CLIP vocabulary needs <|startoftext|> and <|endoftext|> tokens.")
        self.vocab = dict(vocab)
        self.ranks = {pair: i for i, pair in enumerate(merges)}
        self.sot = vocab[SOT]
        self.eot = vocab[EOT]
        self._bytes = bytes_to_unicode()
        self._cache: dict[str, list[str]] = {}

    @classmethod
    def from_path(cls, path: Path) -> ClipTokenizer:
        """Load a HF ``tokenizer.json``, or a folder with ``vocab.json`` and ``merges.txt``.

        Raises:
            ValueError: the files are missing or not a BPE tokenizer.
        """
        if path.is_dir():
            vocab_file, merges_file = path / "vocab.json", path / "merges.txt"
            if not vocab_file.is_file() or not merges_file.is_file():
                raise ValueError(f"{path} has no vocab.json and merges.txt.")
            vocab = json.loads(vocab_file.read_text(encoding="utf-8"))
            lines = merges_file.read_text(encoding="utf-8").splitlines()
            merges = [_pair(line) for line in lines if line and not line.startswith("#version")]
            return cls(vocab, merges)
        if not path.is_file():
            raise ValueError(f"Tokenizer file {path} not found.")
        data = json.loads(path.read_text(encoding="utf-8"))
        model = data.get("model", {}) if isinstance(data, dict) else {}
        if model.get("type") != "BPE":
            raise ValueError(f"{path} is not a BPE tokenizer.json.")
        pairs: list[tuple[str, str]] = [
            (str(m[0]), str(m[1])) if isinstance(m, list) else _pair(m)
            for m in model.get("merges", [])
        ]
        return cls(model["vocab"], pairs)

    def _bpe(self, token: str) -> list[str]:
        cached = self._cache.get(token)
        if cached is not None:
            return cached
        word = [*token[:-1], token[-1] + "</w>"]
        while len(word) > 1:
            pairs = [(word[i], word[i + 1]) for i in range(len(word) - 1)]
            best = min(pairs, key=lambda p: self.ranks.get(p, 1 << 30))
            if best not in self.ranks:
                break
            merged: list[str] = []
            i = 0
            while i < len(word):
                if i < len(word) - 1 and (word[i], word[i + 1]) == best:
                    merged.append(word[i] + word[i + 1])
                    i += 2
                else:
                    merged.append(word[i])
                    i += 1
            word = merged
        if len(self._cache) < 10_000:
            self._cache[token] = word
        return word

    def tokens(self, text: str) -> list[int]:
        """Token ids of ``text`` without the start/end tokens (unknown pieces are dropped)."""
        text = " ".join(text.lower().split())
        ids: list[int] = []
        for piece in _PATTERN.findall(text):
            mapped = "".join(self._bytes[b] for b in piece.encode("utf-8"))
            ids += [self.vocab[t] for t in self._bpe(mapped) if t in self.vocab]
        return ids

    def encode(self, text: str, context_length: int = 77) -> list[int]:
        """``[sot, tokens..., eot]`` truncated and zero-padded to ``context_length``."""
        ids = [*[self.sot, *self.tokens(text)][: context_length - 1], self.eot]
        return ids + [0] * (context_length - len(ids))


def _pair(line: str) -> tuple[str, str]:
    a, _, b = line.strip().partition(" ")
    return a, b
