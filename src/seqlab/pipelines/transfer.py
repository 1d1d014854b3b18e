"""What a task model starts from besides random weights: the user's word vectors (`embeddings`,
seqlab.data.vectors), or a pretrained language model's embedding and encoder (`init_from`,
seqlab.pipelines.lm_transfer). A task's `fit` calls three hooks:

    cfg = adopt_pretrained(cfg, log, task)          # embed = the vectors' dimension; the LM's sizes and cell
    tok = pretrained_tokenizer(cfg.model) or build_tokenizer(...)   # the LM's own tokenizer
    ...build the vocabulary and the model...
    apply_pretrained(model.encoder.embedding, vocab, cfg.model, log, encoder=model.encoder)
"""

from __future__ import annotations

from collections.abc import Callable

from seqlab.data.vectors import load_vectors, vector_dim
from seqlab.data.vocab import Vocab
from seqlab.errors import UserError
from seqlab.models.encoder import RecurrentEncoder
from seqlab.pipelines.config import Config
from seqlab.pipelines.lm_transfer import (
    check_level,
    copy_lm,
    copy_lm_encoder,
    finetune_plan,
    layer_groups,
    lm_encoder_config,
    open_lm,
    structure,
    tagger_groups,
)


def adopt_pretrained(cfg: Config, log: Callable[[str], None], task: str = "") -> Config:
    """`cfg` with model.embed set to the dimension of model.embeddings (when a file is given), and with
    model.init_from, the settings the model must share with the LM (cell, sizes, level, case)."""
    m = cfg.model
    init = getattr(m, "init_from", None)
    _check_pair(m, init, task)
    if getattr(m, "freeze_embeddings", False) and not getattr(m, "embeddings", None) and not init:
        raise UserError("--freeze-embeddings keeps pretrained vectors as they are; give them with --embeddings "
                        "FILE (or --init-from LM_RUN), or drop --freeze-embeddings")
    if init:
        if getattr(m, "embeddings", None):
            raise UserError("--embeddings and --init-from both give the embedding's start; choose one")
        return _adopt_lm(cfg, init, log, task)
    if not getattr(m, "embeddings", None):
        return cfg
    dim = vector_dim(m.embeddings)
    if dim == m.embed:
        return cfg
    log(f"embed {dim}: the dimension of the vectors in {m.embeddings} (instead of {m.embed})")
    return cfg.with_values(embed=dim).validate()


def _adopt_lm(cfg: Config, path: str, log, task: str) -> Config:
    lm = open_lm(path)
    values: dict = {}
    if task == "tag":  # the LM runs beside the tagger's own encoder, as its features: nothing to share
        check_level(lm, path, "word", "the tagger")
    elif task == "classify":
        if cfg.data.features:
            raise UserError("--init-from gives a text model's start; a classifier of numeric feature sequences "
                            "cannot take it (drop --init-from or --features)")
        check_level(lm, path, cfg.data.tokenizer, "this classifier")
        if cfg.model.init_from_backward and cfg.data.regression:
            raise UserError("--init-from-backward averages the class probabilities of two members; a regression "
                            "has none (drop --init-from-backward)")
        if cfg.model.bidirectional:
            raise UserError(f"{path} reads left to right; a classifier started from it cannot be bidirectional "
                            "(drop --bidirectional)")
        values = {**structure(lm), "lowercase": lm.tokenizer.lowercase}
    elif task == "lm":
        values = {**structure(lm), "level": lm.level, "lowercase": lm.tokenizer.lowercase,
                  "no_tie": not lm.model.cfg.tie_weights, "backward": lm.backward}
    changed = {k: v for k, v in values.items() if cfg.get(cfg.leaf_names()[k]) != v}
    enc = lm.model.cfg.encoder
    log(f"init from {path}: a {lm.level}-level {enc.cell} LM, {enc.layers}x{enc.hidden}, embed {enc.embed_dim}, "
        f"vocab {len(lm.vocab):,}" + (" (its " + ", ".join(f"{k} {v}" for k, v in changed.items()) + ")"
                                      if changed else ""))
    return cfg.with_values(**changed).validate() if changed else cfg


def _check_pair(m, init: str | None, task: str) -> None:
    """With m.init_from_backward: a backward LM beside the forward LM of `init`, reading the same tokens
    (and, for a classifier's two members, of the same sizes)."""
    back = getattr(m, "init_from_backward", None)
    if not back:
        return
    if not init:
        raise UserError("--init-from-backward pairs a backward LM with the forward LM of --init-from; give "
                        "--init-from FORWARD_LM_RUN too")
    fwd, bwd = open_lm(init), open_lm(back)
    if fwd.backward:
        raise UserError(f"{init} is a backward LM; give it to --init-from-backward, and to --init-from an LM "
                        "trained without --backward")
    if not bwd.backward:
        raise UserError(f"{back} reads left to right; --init-from-backward takes an LM trained with "
                        "`seqlab lm train --backward`")
    if bwd.tokenizer.to_json() != fwd.tokenizer.to_json():
        raise UserError(f"{back} and {init} read text differently ({bwd.level} and {fwd.level} level, lowercase "
                        f"{bwd.tokenizer.lowercase} and {fwd.tokenizer.lowercase}); train both LMs with the same "
                        "--level and --lowercase")
    sb, sf = structure(bwd), structure(fwd)
    if task == "classify" and sb != sf:
        diff = ", ".join(f"{k} {sb[k]} and {v}" for k, v in sf.items() if sb[k] != v)
        raise UserError(f"{back} and {init} differ in size ({diff}); the classifier's forward and backward members "
                        "share one size: train both LMs with the same --cell, --layers, --hidden and --embed")


def pretrained_tokenizer(m):
    """The tokenizer of the LM in `m.init_from` (a task started from it reads text as it did), or None."""
    init = getattr(m, "init_from", None)
    return open_lm(init).tokenizer if init else None


def pretrained_encoder_config(m, vocab: Vocab, dropout: float = 0.0, backward: bool = False):
    """The EncoderConfig of the LM in `m.init_from` (or `m.init_from_backward`) over `vocab` (a tagger's
    LM features), or None."""
    init = getattr(m, "init_from_backward" if backward else "init_from", None)
    return lm_encoder_config(open_lm(init), vocab, dropout) if init else None


def apply_pretrained(emb, vocab: Vocab | None, m, log: Callable[[str], None], encoder=None, lm_model=None,
                     back_encoder=None) -> None:
    """Start `emb` (an nn.Embedding over `vocab`) from the vectors file `m.embeddings`, if any, and
    log the coverage ("71% of the vocabulary found"); with `m.init_from`, copy the LM into `encoder`
    (a RecurrentEncoder over `vocab`), or all of it into `lm_model` (a LanguageModel, to continue it);
    with `m.init_from_backward` too, that backward LM into `back_encoder`."""
    if getattr(m, "embeddings", None) and (emb is None or vocab is None):
        raise UserError("--embeddings gives vectors of tokens; a model of numeric feature sequences has none; "
                        "drop --embeddings")
    init = getattr(m, "init_from", None)
    if init and lm_model is not None:
        _copy_into(lm_model, vocab, m, init, open_lm(init), log)
        return
    if init and encoder is not None:
        _copy_into(encoder, vocab, m, init, open_lm(init), log)
        back = getattr(m, "init_from_backward", None)
        if back and back_encoder is not None:
            _copy_into(back_encoder, vocab, m, back, open_lm(back), log)
        return
    if not getattr(m, "embeddings", None):
        return
    vecs = load_vectors(emb, vocab, m.embeddings, m.freeze_embeddings)
    log(f"embeddings {vecs.summary(m.freeze_embeddings)}{'; frozen' if m.freeze_embeddings else ''}")


def _copy_into(dst, vocab: Vocab, m, path: str, lm, log) -> None:
    """Copy `lm` (from `path`) into `dst`: a RecurrentEncoder (its embedding and layers) or a LanguageModel
    (all of it); log the vocabulary's coverage; freeze the embedding with m.freeze_embeddings."""
    whole = not isinstance(dst, RecurrentEncoder)
    found = copy_lm(dst, vocab, lm) if whole else copy_lm_encoder(dst, vocab, lm)
    words = len(vocab) - len(vocab.specials)
    log(f"init from {path}: {found / max(words, 1):.0%} of the vocabulary found in the LM's ({found:,} of "
        f"{words:,}; the others start at the mean embedding)")
    if getattr(m, "freeze_embeddings", False):
        (dst.encoder if whole else dst).embedding.weight.requires_grad_(False)


def finetune(task: str, model, m, callbacks, out, logger: str, log: Callable[[str], None]) -> dict:
    """run_training's `param_groups` and `callbacks` for ULMFiT's fine-tuning settings in `m`
    (lr_decay_per_layer, gradual_unfreeze), over the layer groups of a `task` model."""
    groups = tagger_groups(model) if task == "tag" else layer_groups(model, model.encoder, model.back_encoder)
    param_groups, callbacks = finetune_plan(groups, m, callbacks, out, logger, log)
    return {"param_groups": param_groups, "callbacks": callbacks}
