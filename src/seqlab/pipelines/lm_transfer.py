"""A pretrained language model as the start of another model, and ULMFiT's fine-tuning (Howard & Ruder 2018).

    lm = open_lm("runs/wikilm")                          # a `seqlab lm train` run (or checkpoint)
    copy_lm_encoder(clf.encoder, vocab, lm)              # its embedding (mapped by token) and layers
    groups = layer_groups(clf, clf.encoder)              # bottom to top: embedding, layer 1..L, the head
    opt_groups = discriminative(groups, 2.6)             # group k below the top: lr / 2.6**k
    GradualUnfreeze(groups)                              # a Trainer callback: one more group per epoch

The vocabulary is mapped by token: a task token takes the LM's row of the same token (or of its
lower-cased form's most frequent spelling); tokens new to the LM start at the mean of the LM's
embedding rows; PAD is zero. The LM must read the tokens the task reads: a word-level LM serves word
tokenizers (and taggers), a char or subword LM a task of the same level (its tokenizer is reused).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from seqlab.data.vocab import PAD, Vocab
from seqlab.errors import UserError
from seqlab.models.encoder import EncoderConfig, RecurrentEncoder

STRUCTURE = {"cell": "cell", "layers": "layers", "hidden": "hidden", "embed": "embed_dim",
             "locked_dropout": "locked_dropout", "residual": "residual", "layer_norm": "layer_norm"}


def open_lm(path):
    """The LM pipeline of a run or checkpoint directory (its eager model, not an exported stand-in).

    A task's fit asks for its LMs several times (sizes, tokenizer, checks, the copy): each is read once
    while the files of its directory (and of the directories in it) are unchanged. Callers copy from it
    and never change it."""
    return _open_lm(str(path), _stamp(Path(path)))


def _stamp(p: Path) -> tuple:
    """What tells a changed (retrained, replaced) LM directory from the one read before."""
    if not p.is_dir():
        return (str(p),)
    files = [f for d in (p, *(d for d in p.iterdir() if d.is_dir())) for f in d.iterdir() if f.is_file()]
    return (str(p.resolve()), *sorted((str(f), f.stat().st_mtime_ns, f.stat().st_size) for f in files))


@functools.lru_cache(maxsize=2)  # a forward and a backward LM
def _open_lm(path: str, stamp: tuple):
    from seqlab.models.language_model import LanguageModel
    from seqlab.pipelines.lm import LM

    lm = LM.load(path)
    if not isinstance(lm.model, LanguageModel):
        raise UserError(f"{path} is an exported file; give --init-from the LM's run directory (with best/)")
    return lm


def check_level(lm, path, level: str, what: str) -> None:
    if lm.level != level:
        fix = "train a word-level LM (seqlab lm train --level word)" if what == "the tagger" else \
            f"pass --tokenizer {lm.level} to read the text as the LM does"
        raise UserError(f"{path} is a {lm.level}-level language model but {what} reads {level} tokens; {fix}")


def structure(lm) -> dict:
    """The encoder settings a model must share with `lm` to take its weights: {setting name: value}."""
    enc = lm.model.cfg.encoder
    return {name: getattr(enc, field) for name, field in STRUCTURE.items()}


def lm_encoder_config(lm, vocab: Vocab, dropout: float = 0.0, embed_dropout: float = 0.0) -> EncoderConfig:
    """The LM's encoder over `vocab` (for a tagger's LM features)."""
    enc = lm.model.cfg.encoder
    return EncoderConfig(**{**vars(enc), "vocab_size": len(vocab), "pad_id": vocab.pad_id, "dropout": dropout,
                            "embed_dropout": embed_dropout})


def map_rows(weight: torch.Tensor, src: Vocab, dst: Vocab) -> tuple[torch.Tensor, int]:
    """(rows of `weight` (len(src), d) for the tokens of `dst` (len(dst), d), tokens of dst found in src).

    A token takes src's row of the same token, else of the most frequent src token with the same
    lower-cased form; others the mean row of src's non-special tokens; PAD a zero row."""
    by_lower: dict[str, int] = {}
    for i, t in enumerate(src.itos):
        if t not in src.specials:
            by_lower.setdefault(t.lower(), i)
    body = weight[len(src.specials):] if len(src) > len(src.specials) else weight
    out = body.mean(0, keepdim=True).repeat(len(dst), 1)
    found = 0
    for i, t in enumerate(dst.itos):
        j = src.stoi.get(t)
        if j is None and t not in dst.specials:
            j = by_lower.get(t.lower())
        if j is not None:
            out[i] = weight[j]
            found += t not in dst.specials
    if PAD in dst.stoi:
        out[dst.stoi[PAD]] = 0.0
    return out, found


def copy_lm_encoder(dst: RecurrentEncoder, vocab: Vocab, lm) -> int:
    """Copy `lm`'s embedding (mapped onto `vocab`) and recurrent layers into `dst`; returns the number of
    vocabulary tokens (specials not counted) the LM knew."""
    src = lm.model.encoder
    rows, found = map_rows(src.embedding.weight.detach(), lm.vocab, vocab)
    state = {k: v for k, v in src.state_dict().items() if not k.startswith("embedding.")}
    with torch.no_grad():
        dst.embedding.weight.copy_(rows)
        missing, unexpected = dst.load_state_dict(state, strict=False)
    if unexpected or [k for k in missing if not k.startswith("embedding.")]:
        raise UserError(f"the LM's encoder does not fit this model ({(unexpected or missing)[0]}); "
                        "keep the LM's cell, layers, hidden and embed sizes")
    return found


def copy_lm(dst, vocab: Vocab, lm) -> int:
    """Continue an LM on new text: `dst` (a LanguageModel over `vocab`) takes all of `lm`'s weights, the
    embedding and (untied) output rows and bias mapped by token."""
    found = copy_lm_encoder(dst.encoder, vocab, lm)
    if not dst.cfg.tied:
        w, _ = map_rows(lm.model.decoder.weight.detach(), lm.vocab, vocab)
        with torch.no_grad():
            dst.decoder.weight.copy_(w)
    b, _ = map_rows(lm.model.decoder.bias.detach()[:, None], lm.vocab, vocab)
    with torch.no_grad():
        dst.decoder.bias.copy_(b[:, 0])
    return found


# ---- ULMFiT's fine-tuning -----------------------------------------------------------------------
def encoder_groups(enc: RecurrentEncoder) -> list[list[nn.Parameter]]:
    """The encoder's layer groups, bottom to top: [embedding] (when it has one), then each layer
    (with its layer norm); the layers of a fused nn.LSTM are told apart by their `_l{k}` names."""
    groups = [[enc.embedding.weight]] if enc.embedding is not None else []
    per: list[list[nn.Parameter]] = [[] for _ in range(enc.cfg.layers)] if enc.cfg.cell != "none" else []
    if enc.layered:
        for k, rnn in enumerate(enc.rnns):
            per[k] += list(rnn.parameters()) + (list(enc.norms[k].parameters()) if enc.norms is not None else [])
    elif len(enc.rnns):
        for name, p in enc.rnns[0].named_parameters():
            per[int(re.search(r"_l(\d+)", name).group(1))].append(p)
    return groups + [g for g in per if g]


def layer_groups(model: nn.Module, *encoders: RecurrentEncoder | None, bottom=()) -> list[list[nn.Parameter]]:
    """ULMFiT's layer groups of `model`, bottom to top: `bottom` parameters (e.g. a tagger's own word
    embedding), the encoders' groups (of two encoders, a forward and a backward one, merged level by level:
    both embeddings, both first layers, ...), then every other parameter of `model` (the task's head) on top."""
    per = [encoder_groups(e) for e in encoders if e is not None]
    merged = [[p for g in per for p in (g[k] if k < len(g) else [])] for k in range(max(map(len, per)))]
    groups = ([list(bottom)] if bottom else []) + merged
    seen = {id(p) for g in groups for p in g}
    return groups + [[p for p in model.parameters() if id(p) not in seen]]


def tagger_groups(model) -> list[list[nn.Parameter]]:
    """A tagger's layer groups: its LM's (embedding, layers), or without one its own word embedding and
    encoder layers; the rest of the tagger on top."""
    if model.lm is not None:
        return layer_groups(model, model.lm, model.lm_back)
    return layer_groups(model, model.encoder, bottom=[model.embedding.weight])


def discriminative(groups: list[list[nn.Parameter]], decay: float) -> list[dict]:
    """AdamW parameter groups: group k below the top trains at lr / decay**k ("lr_scale")."""
    n = len(groups)
    return [{"params": g, "lr_scale": decay ** -(n - 1 - i)} for i, g in enumerate(groups) if g]


class GradualUnfreeze:
    """A Trainer callback: in epoch e (0-based) only the top e+1 layer groups train, the others are
    frozen (requires_grad False, so AdamW leaves them, weight decay included, untouched); from epoch
    len(groups)-1 on, all do. A parameter frozen before (--freeze-embeddings) stays frozen."""

    def __init__(self, groups: list[list[nn.Parameter]], log: Callable[[str], None] | None = None):
        self.groups, self.log = groups, log
        self.trainable = [[p.requires_grad for p in g] for g in groups]
        self.shown = None

    def frozen(self, epoch: int) -> int:
        """How many groups (from the bottom) are frozen in `epoch`."""
        return max(0, len(self.groups) - 1 - epoch)

    def on_epoch_start(self, trainer) -> None:
        n = self.frozen(trainer.state["epoch"])
        for i, (g, can) in enumerate(zip(self.groups, self.trainable)):
            for p, c in zip(g, can):
                p.requires_grad_(c and i >= n)
        if self.log is not None and n != self.shown:
            self.log(f"gradual unfreezing: epoch {trainer.state['epoch'] + 1} trains the top "
                     f"{len(self.groups) - n} of {len(self.groups)} layer groups")
        self.shown = n

    def on_fit_end(self, trainer) -> None:
        for g, can in zip(self.groups, self.trainable):
            for p, c in zip(g, can):
                p.requires_grad_(c)


def finetune_plan(groups, m, callbacks, out, logger: str, log) -> tuple[list | None, list | None]:
    """(AdamW parameter groups or None, callbacks) for the model settings `m` (lr_decay_per_layer,
    gradual_unfreeze): the Trainer's optimizer groups and a GradualUnfreeze beside the run's callbacks."""
    decay, unfreeze = getattr(m, "lr_decay_per_layer", 1.0), getattr(m, "gradual_unfreeze", False)
    param_groups = discriminative(groups, decay) if decay != 1.0 else None
    if param_groups:
        log(f"discriminative learning rates over {len(param_groups)} layer groups: lr / {decay}**k, k = 0 at the top")
    if unfreeze:
        if callbacks is None:
            from seqlab.train.callbacks import default_callbacks

            callbacks = default_callbacks(out, logger)
        callbacks = [*callbacks, GradualUnfreeze(groups, log)]
    return param_groups, callbacks
