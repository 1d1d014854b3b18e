"""The one vocabulary class: tokens <-> integer ids.

Every task uses `Vocab`: for words, characters and subwords (with the special tokens PAD, UNK,
BOS, EOS at ids 0..3) and for labels or tags (built with ``specials=()`` so ids start at 0).

    >>> v = Vocab.build([["a", "b", "a"], ["c"]], min_freq=1)
    >>> v.encode(["a", "zzz"])          # unknown tokens map to UNK
    [4, 1]
    >>> v.decode([4, 1])
    ['a', '<unk>']
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

from seqlab.errors import UserError

PAD, UNK, BOS, EOS = "<pad>", "<unk>", "<bos>", "<eos>"
DEFAULT_SPECIALS = (PAD, UNK, BOS, EOS)


class Vocab:
    """An ordered list of tokens; a token's id is its position.

    Args:
        tokens: the tokens in id order, specials first.
        specials: which of the leading tokens are special. When UNK is among them, unknown
            tokens encode to UNK; otherwise encoding an unknown token raises `UserError`
            (the right behaviour for label sets).
    """

    def __init__(self, tokens: Sequence[str], specials: Sequence[str] = DEFAULT_SPECIALS):
        self.itos: list[str] = list(tokens)
        self.specials: tuple[str, ...] = tuple(specials)
        if self.itos[: len(self.specials)] != list(self.specials):
            raise ValueError("specials must be the first tokens of the vocabulary")
        self.stoi: dict[str, int] = {t: i for i, t in enumerate(self.itos)}
        if len(self.stoi) != len(self.itos):
            raise ValueError("vocabulary tokens must be unique")
        self.unk_id: int | None = self.stoi.get(UNK) if UNK in self.specials else None

    @classmethod
    def build(
        cls,
        sequences: Iterable[Iterable[str]],
        min_freq: int = 1,
        max_size: int | None = None,
        specials: Sequence[str] = DEFAULT_SPECIALS,
    ) -> Vocab:
        """Count tokens and keep those seen at least `min_freq` times, most frequent first.

        Ties are broken alphabetically so that the same data always gives the same ids.
        `max_size` counts the specials too.
        """
        counts: Counter[str] = Counter()
        for seq in sequences:
            counts.update(seq)
        return cls.from_counts(counts, min_freq, max_size, specials)

    @classmethod
    def from_counts(
        cls,
        counts: dict[str, int],
        min_freq: int = 1,
        max_size: int | None = None,
        specials: Sequence[str] = DEFAULT_SPECIALS,
    ) -> Vocab:
        """`build` from token counts already made (a corpus counted chunk by chunk)."""
        counts = {t: c for t, c in counts.items() if t not in specials}
        kept = sorted((t for t, c in counts.items() if c >= min_freq), key=lambda t: (-counts[t], t))
        if max_size is not None:
            kept = kept[: max(0, max_size - len(specials))]
        return cls(list(specials) + kept, specials)

    @classmethod
    def labels(cls, labels: Iterable[str]) -> Vocab:
        """A vocabulary of class labels: no specials, sorted so ids are stable."""
        return cls(sorted(set(labels)), specials=())

    def __len__(self) -> int:
        return len(self.itos)

    def __contains__(self, token: str) -> bool:
        return token in self.stoi

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocab) and self.itos == other.itos and self.specials == other.specials

    @property
    def pad_id(self) -> int:
        return self.stoi[PAD]

    @property
    def bos_id(self) -> int:
        return self.stoi[BOS]

    @property
    def eos_id(self) -> int:
        return self.stoi[EOS]

    def encode(self, tokens: Iterable[str]) -> list[int]:
        """Map tokens to ids; unknown tokens go to UNK (or raise for a vocabulary without UNK)."""
        if self.unk_id is not None:
            unk = self.unk_id
            return [self.stoi.get(t, unk) for t in tokens]
        out = []
        for t in tokens:
            if t not in self.stoi:
                known = ", ".join(repr(x) for x in self.itos[:10])
                raise UserError(f"unknown label {t!r}; this model knows {known}")
            out.append(self.stoi[t])
        return out

    def decode(self, ids: Iterable[int]) -> list[str]:
        return [self.itos[i] for i in ids]

    def to_json(self) -> dict:
        return {"tokens": self.itos, "specials": list(self.specials)}

    @classmethod
    def from_json(cls, d: dict) -> Vocab:
        return cls(d["tokens"], d["specials"])
