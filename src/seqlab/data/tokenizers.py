"""Tokenizers: text -> list of token strings.

Three levels, one interface (`tokenize`, `detokenize`, `to_json`):
  char     every character is a token ("not good" -> n, o, t, ' ', g, ...)
  word     words and punctuation, keeping contractions ("isn't", "n't", "'s") whole
  subword  byte-pair encoding learned from the user's training text with the `tokenizers` package

Tokenizers only split text; the `Vocab` maps the resulting strings to ids.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable

from seqlab.errors import UserError

_WORD_RE = re.compile(r"\w+(?:['’]\w+)*|['’]\w+|[^\w\s]")


class Tokenizer:
    """Base class. `lowercase` folds case before splitting."""

    kind = "base"

    def __init__(self, lowercase: bool = False):
        self.lowercase = lowercase

    def _prep(self, text: str) -> str:
        return text.lower() if self.lowercase else text

    def tokenize(self, text: str) -> list[str]:
        raise NotImplementedError

    def detokenize(self, tokens: Iterable[str]) -> str:
        raise NotImplementedError

    def to_json(self) -> dict:
        return {"kind": self.kind, "lowercase": self.lowercase}


class CharTokenizer(Tokenizer):
    kind = "char"

    def tokenize(self, text: str) -> list[str]:
        return list(self._prep(text))

    def detokenize(self, tokens: Iterable[str]) -> str:
        return "".join(tokens)


class WordTokenizer(Tokenizer):
    kind = "word"

    def tokenize(self, text: str) -> list[str]:
        return _WORD_RE.findall(self._prep(text))

    def detokenize(self, tokens: Iterable[str]) -> str:
        return " ".join(tokens)


class SubwordTokenizer(Tokenizer):
    """Byte-pair encoding (BPE) trained on the user's own text with HuggingFace `tokenizers`."""

    kind = "subword"

    def __init__(self, model_json: str, lowercase: bool = False):
        super().__init__(lowercase)
        from tokenizers import Tokenizer as HFTokenizer

        self._model_json = model_json
        self._hf = HFTokenizer.from_str(model_json)

    @classmethod
    def train(cls, texts: Iterable[str], vocab_size: int = 8000, lowercase: bool = False):
        from tokenizers import Tokenizer as HFTokenizer
        from tokenizers import decoders, models, pre_tokenizers, trainers

        hf = HFTokenizer(models.BPE(unk_token="<unk>"))
        hf.pre_tokenizer = pre_tokenizers.Metaspace()
        hf.decoder = decoders.Metaspace()
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size, special_tokens=["<unk>"], show_progress=False
        )
        prep = (t.lower() for t in texts) if lowercase else texts
        hf.train_from_iterator(prep, trainer=trainer)
        return cls(hf.to_str(), lowercase)

    def tokenize(self, text: str) -> list[str]:
        return self._hf.encode(self._prep(text)).tokens

    def detokenize(self, tokens: Iterable[str]) -> str:
        ids = [self._hf.token_to_id(t) for t in tokens]
        return self._hf.decode([i for i in ids if i is not None])

    def to_json(self) -> dict:
        return {**super().to_json(), "model": json.loads(self._model_json)}


def build_tokenizer(
    kind: str, texts: Iterable[str] | None = None, lowercase: bool = False, vocab_size: int = 8000
) -> Tokenizer:
    """Make a tokenizer of `kind` ('char', 'word' or 'subword'); subword learns from `texts`."""
    if kind == "char":
        return CharTokenizer(lowercase)
    if kind == "word":
        return WordTokenizer(lowercase)
    if kind == "subword":
        if texts is None:
            raise ValueError("a subword tokenizer is trained on texts")
        return SubwordTokenizer.train(texts, vocab_size=vocab_size, lowercase=lowercase)
    raise UserError(f"unknown tokenizer {kind!r}; choose char, word or subword")


def tokenizer_from_json(d: dict) -> Tokenizer:
    kind = d["kind"]
    if kind == "subword":
        return SubwordTokenizer(json.dumps(d["model"]), d["lowercase"])
    return build_tokenizer(kind, lowercase=d["lowercase"])
