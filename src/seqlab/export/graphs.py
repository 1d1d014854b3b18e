"""The inference graphs of each task: the eager model behind fixed tensor signatures.

Every graph takes and returns plain tensors (no None, no NamedTuple), so it can be traced into
TorchScript and ONNX with dynamic batch and time axes. Padded batches stay packed: the encoder's
`pack_padded_sequence` becomes the `sequence_lens` input of ONNX's LSTM/GRU/RNN operators, so
padding never reaches a cell in the exported graph either (outputs equal the eager model's).

    task       graph    inputs                                       outputs
    classify   forward  ids (B, T) [features (B, T, F)], lengths (B,)  logits (B, classes)
    lm         forward  ids (B, T), h (L, B, H) [, c (L, B, H)]      logits (B, T, V), h [, c]
    translate  forward  src (B, S), lengths (B,)                     keys (B, S, K) [, proj], mask (B, S),
    / qa                                                             h (L, B, H) [, c] [, feed (B, H)]
               step     y (B,), h [, c] [, feed], keys [, proj], mask  logits (B, V), h [, c] [, feed] [, w (B, S)]
    tag        forward  words (B, T), lengths (B,) [, chars (W, C), char_lengths (W,), form_index (B, T)]
                        [, case (B, T)]                              emissions (B, T, tags)
    forecast   forward  x (B, T, targets + covariates), future (B, horizon, covariates)
                                                                     mean (B, horizon, targets) [, scale]
    ctc        forward  feats (B, T, F), lengths (B,)               log_probs (B, T', labels), out_lengths (B,)
A bracketed tensor exists when the model has it (LSTM cell state c, input feeding, attention,
character features, a Gaussian head). The CRF's Viterbi decoding, the sampling or beam search
of the generative tasks and CTC's greedy or beam decoding (speech) stay in Python around the
graphs, as they do around the eager model.
"""

from __future__ import annotations

import contextlib
import types
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from seqlab.models.encoder import EncoderOutput, RecurrentEncoder
from seqlab.models.seq2seq import DecoderState, Memory
from seqlab.models.tagger import TagBatch


@dataclass
class GraphSpec:
    """One graph: `module` called as module(*inputs) -> tuple of outputs, with names and dynamic axes."""

    name: str
    module: nn.Module
    inputs: list[str]
    outputs: list[str]
    dynamic: dict[str, dict[int, str]] = field(default_factory=dict)


class ClassifyGraph(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, ids, lengths):
        return (self.model(ids, lengths),)


class LMGraph(nn.Module):
    """One call of the LM from a given state: a prime of T tokens, or one step (T = 1)."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, ids, *state):
        st = None if not state else state[0] if len(state) == 1 else tuple(state)
        logits, new = self.model(ids, st)
        return (logits,) if new is None else (logits, *(new if isinstance(new, tuple) else (new,)))


def seq2seq_names(cfg) -> tuple[list[str], list[str]]:
    """Names of the tensors of the encoder's Memory and of a DecoderState of this model."""
    mem = ["keys", *(["proj"] if cfg.attention != "none" else []), "mask"]
    state = ["h", *(["c"] if cfg.dec_cell == "lstm" else []), *(["feed"] if cfg.input_feed else [])]
    return mem, state


class Seq2SeqEncodeGraph(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, src, lengths):
        mem, st = self.model.encode(src, lengths)
        return tuple(t for t in (mem.keys, mem.proj, mem.mask, st.h, st.c, st.feed) if t is not None)


class Seq2SeqStepGraph(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model
        self.mem_names, self.state_names = seq2seq_names(model.cfg)

    def forward(self, y, *tensors):
        k = len(self.state_names)
        st = dict(zip(self.state_names, tensors[:k]))
        mem = dict(zip(self.mem_names, tensors[k:]))
        state = DecoderState(st["h"], st.get("c"), st.get("feed"))
        logits, new, w = self.model.step(y, state, Memory(mem["keys"], mem.get("proj"), mem["mask"]))
        return tuple(t for t in (logits, new.h, new.c, new.feed, w) if t is not None)


def tag_inputs(cfg) -> list[str]:
    chars = ["chars", "char_lengths", "form_index"] if cfg.char != "none" else []
    return ["words", "lengths", *chars, *(["case"] if cfg.case_dim else [])]


class TagGraph(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model
        self.names = tag_inputs(model.cfg)

    def forward(self, *tensors):
        t = dict(zip(self.names, tensors))
        b = TagBatch(t["words"], t["lengths"], None, t["lengths"], t.get("chars"), t.get("char_lengths"),
                     t.get("form_index"), t.get("case"))
        return (self.model(b),)


class ForecastGraph(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x, future):
        out = self.model(x, future)
        return (out.mean,) if out.scale is None else (out.mean, out.scale)


class CTCGraph(nn.Module):
    """The speech acoustic model: frames -> (shortened by the front-end) CTC log-posteriors."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, feats, lengths):
        return tuple(self.model(feats, lengths))


def _layered_forward(self: RecurrentEncoder, x, lengths=None, state=None) -> EncoderOutput:
    """`RecurrentEncoder.forward` in eval mode for layer-by-layer stacks (residual, layer norm), packing
    each layer on its own: the ONNX exporter turns a pack/pad pair around one RNN into the RNN's
    sequence_lens, but not a PackedSequence carried across layers. Equal outputs at the valid steps
    (zero at padding, as in `forward`), and equal final states."""
    if lengths is None:
        return RecurrentEncoder.forward(self, x, lengths, state)
    cfg, h = self.cfg, (self.embedding(x) if self.embedding is not None else x)
    total, lengths = h.shape[1], lengths.cpu()
    h_list, c_list = [], []
    for i, (rnn, st) in enumerate(zip(self.rnns, self._split_state(state))):
        inp = h
        out, st = rnn(pack_padded_sequence(h, lengths, batch_first=True, enforce_sorted=False), st)
        h = pad_packed_sequence(out, batch_first=True, total_length=total)[0]
        if self.norms is not None:
            h = self.norms[i](h)
        if cfg.residual and i > 0:
            h = h + inp
        h_list.append(st[0] if isinstance(st, tuple) else st)
        if isinstance(st, tuple):
            c_list.append(st[1])
    mask = (torch.arange(total)[None, :] < lengths[:, None]).to(h.device)
    return EncoderOutput(h * mask[..., None], lengths, torch.cat(h_list, 0), torch.cat(c_list, 0) if c_list else None)


@contextlib.contextmanager
def onnx_friendly(model: nn.Module):
    """Within the block, layer-by-layer encoders of `model` run `_layered_forward` (for ONNX export)."""
    encoders = [m for m in model.modules() if isinstance(m, RecurrentEncoder) and m.layered and len(m.rnns)]
    for m in encoders:
        m.forward = types.MethodType(_layered_forward, m)
    try:
        yield
    finally:
        for m in encoders:
            del m.forward



BT = {0: "batch", 1: "time"}  # the dynamic axes of a (batch, time, ...) tensor


def _specs_lm(model: nn.Module):
    state = [] if model.cfg.encoder.cell == "none" else ["h", "c"] if model.cfg.encoder.cell == "lstm" else ["h"]
    sdyn = {n: {1: "batch"} for n in state}
    return [GraphSpec("forward", LMGraph(model), ["ids", *state], ["logits", *(f"{n}_out" for n in state)],
                      {"ids": BT, "logits": BT, **sdyn, **{f"{n}_out": {1: "batch"} for n in state}})]


def _specs_seq2seq(model: nn.Module):
    mem, st = seq2seq_names(model.cfg)
    src = {0: "batch", 1: "src"}
    mdyn = {"keys": src, "proj": src, "mask": src}
    sdyn = {"h": {1: "batch"}, "c": {1: "batch"}, "feed": {0: "batch"}}
    enc = GraphSpec("forward", Seq2SeqEncodeGraph(model), ["src", "lengths"], [*mem, *st],
                    {"src": src, "lengths": {0: "batch"}, **mdyn, **sdyn})
    outs = ["logits", *(f"{n}_out" for n in st), *(["weights"] if model.cfg.attention != "none" else [])]
    step = GraphSpec("step", Seq2SeqStepGraph(model), ["y", *st, *mem], outs,
                     {"y": {0: "batch"}, **sdyn, **mdyn, "logits": {0: "batch"}, "weights": src,
                      **{f"{n}_out": sdyn[n] for n in st}})
    return [enc, step]


def _specs_tag(model: nn.Module):
    names = tag_inputs(model.cfg)
    dyn = {"words": BT, "lengths": {0: "batch"}, "chars": {0: "forms", 1: "chars"},
           "char_lengths": {0: "forms"}, "form_index": BT, "case": BT, "emissions": BT}
    return [GraphSpec("forward", TagGraph(model), names, ["emissions"], dyn)]


def _specs_forecast(model: nn.Module):
    outs = ["mean", *(["scale"] if model.cfg.likelihood == "gaussian" else [])]
    return [GraphSpec("forward", ForecastGraph(model), ["x", "future"], outs,
                      {"x": BT, "future": {0: "batch"}, "mean": {0: "batch"}, "scale": {0: "batch"}})]


def _specs_classify(model: nn.Module):
    return [GraphSpec("forward", ClassifyGraph(model), ["ids", "lengths"], ["logits"],
                      {"ids": BT, "lengths": {0: "batch"}, "logits": {0: "batch"}})]


def _specs_ctc(model: nn.Module):
    return [GraphSpec("forward", CTCGraph(model), ["feats", "lengths"], ["log_probs", "out_lengths"],
                      {"feats": BT, "lengths": {0: "batch"}, "log_probs": BT, "out_lengths": {0: "batch"}})]


SPECS = {"classify": _specs_classify, "lm": _specs_lm, "seq2seq": _specs_seq2seq, "tag": _specs_tag,
         "forecast": _specs_forecast, "ctc": _specs_ctc}  # graph kind -> its graphs


def specs(kind: str, model: nn.Module) -> list[GraphSpec]:
    """The graphs of an eager model of graph `kind` (in eval mode); the first is the main one."""
    model.eval()
    if kind not in SPECS:
        raise ValueError(f"no inference graph of kind {kind!r}")
    return SPECS[kind](model)


def _lengths(batch: int, time: int, g: torch.Generator) -> torch.Tensor:
    """(batch,) random lengths in 1..time, the first = time (so the batch is `time` wide)."""
    lengths = torch.randint(1, time + 1, (batch,), generator=g)
    lengths[0] = time
    return lengths


def _ids(vocab: int, batch: int, time: int, lengths: torch.Tensor, g: torch.Generator, pad: int = 0):
    ids = torch.randint(4, max(5, vocab), (batch, time), generator=g).clamp(max=vocab - 1)
    return ids.masked_fill(torch.arange(time)[None, :] >= lengths[:, None], pad)



def _inputs_classify(model: nn.Module, batch: int, time: int, g: torch.Generator):
    cfg = model.cfg
    lengths, enc = _lengths(batch, time, g), cfg.encoder
    if enc.vocab_size:
        x = _ids(enc.vocab_size, batch, time, lengths, g, enc.pad_id)
    else:
        x = torch.randn(batch, time, enc.input_dim, generator=g)
        x = x * (torch.arange(time)[None, :, None] < lengths[:, None, None])
    return {"forward": (x, lengths)}


def _inputs_lm(model: nn.Module, batch: int, time: int, g: torch.Generator):
    cfg = model.cfg
    enc = cfg.encoder
    ids = torch.randint(4, enc.vocab_size, (batch, time), generator=g)
    n = enc.layers * enc.directions
    state = () if enc.cell == "none" else tuple(
        torch.randn(n, batch, enc.hidden, generator=g) * 0.5 for _ in range(2 if enc.cell == "lstm" else 1))
    return {"forward": (ids, *state)}


def _inputs_seq2seq(model: nn.Module, batch: int, time: int, g: torch.Generator):
    cfg = model.cfg
    lengths = _lengths(batch, time, g)
    src = _ids(cfg.encoder.vocab_size, batch, time, lengths, g, cfg.encoder.pad_id)
    enc_out = Seq2SeqEncodeGraph(model)(src, lengths)
    y = torch.randint(4, cfg.tgt_vocab_size, (batch,), generator=g)
    mem_names, st_names = seq2seq_names(cfg)
    k = len(mem_names)
    return {"forward": (src, lengths), "step": (y, *enc_out[k:], *enc_out[:k])}


def _inputs_tag(model: nn.Module, batch: int, time: int, g: torch.Generator):
    cfg = model.cfg
    lengths = _lengths(batch, time, g)
    out = [_ids(cfg.word_vocab, batch, time, lengths, g, cfg.pad_id), lengths]
    if cfg.char != "none":
        forms = 5
        char_lengths = torch.randint(1, 7, (forms,), generator=g)
        out += [_ids(cfg.char_vocab, forms, int(char_lengths.max()), char_lengths, g), char_lengths,
                torch.randint(0, forms, (batch, time), generator=g)]
    if cfg.case_dim:
        out.append(torch.randint(1, 8, (batch, time), generator=g))
    return {"forward": tuple(out)}


def _inputs_forecast(model: nn.Module, batch: int, time: int, g: torch.Generator):
    cfg = model.cfg
    time = max(time, cfg.season if cfg.window_norm == "season" else 1)  # a window holds at least one season
    x = torch.randn(batch, time, cfg.targets + cfg.covariates, generator=g)
    return {"forward": (x, torch.randn(batch, cfg.horizon, cfg.covariates, generator=g))}


def _inputs_ctc(model: nn.Module, batch: int, time: int, g: torch.Generator):
    cfg = model.cfg
    if cfg.frontend != "none" and cfg.stride > 1 and time % cfg.stride == 0:
        time += 1  # traced with a partial last group, so the front-end's padding is part of the graph
    lengths = _lengths(batch, time, g)
    x = torch.randn(batch, time, cfg.feat_dim, generator=g)
    return {"forward": (x * (torch.arange(time)[None, :, None] < lengths[:, None, None]), lengths)}


SAMPLES = {"classify": _inputs_classify, "lm": _inputs_lm, "seq2seq": _inputs_seq2seq, "tag": _inputs_tag,
           "forecast": _inputs_forecast, "ctc": _inputs_ctc}  # graph kind -> random inputs of its graphs


@torch.no_grad()
def sample_inputs(kind: str, model: nn.Module, batch: int, time: int, seed: int = 0) -> dict[str, tuple]:
    """Random valid inputs of each graph (padded, variable lengths), for tracing and for checks."""
    if kind not in SAMPLES:
        raise ValueError(f"no inference graph of kind {kind!r}")
    return SAMPLES[kind](model, batch, time, torch.Generator().manual_seed(seed))
