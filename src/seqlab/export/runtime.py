"""Running an exported model (`seqlab export`) behind the tasks' own predict code.

`load(path, task)` opens an .onnx file (onnxruntime) or a TorchScript file (.pt/.ts) and returns
the checkpoint's config.json and vocab.json (embedded in the file) and a stand-in for the eager
model: an object the task's pipeline calls exactly like the model (same methods, same tensors
in and out), whose work runs in the exported graphs (see `seqlab.export.graphs`). Nothing is
unpickled: the ONNX metadata is JSON text; TorchScript is read by torch.jit.load.
"""

from __future__ import annotations

import base64
import json
import warnings
from pathlib import Path

import torch

from seqlab.errors import UserError
from seqlab.export.graphs import seq2seq_names, tag_inputs
from seqlab.models.classifier import ClassifierConfig
from seqlab.models.crf import CRF, lengths_to_mask
from seqlab.models.ctc import CTCConfig
from seqlab.models.forecaster import ForecasterConfig, ForecastOutput
from seqlab.models.language_model import LMConfig
from seqlab.models.seq2seq import DecoderState, Memory, Seq2SeqConfig
from seqlab.models.tagger import TaggerConfig
from seqlab.train.checkpoint import load_weights
from seqlab.train.run_dir import open_checkpoint
from seqlab.train.trainer import pick_device

SUFFIXES = {".onnx": "onnx", ".pt": "torchscript", ".ts": "torchscript"}
META = ("config.json", "vocab.json", "export.json")  # JSON texts every exported file holds


def is_exported(path) -> bool:
    """Whether `--model PATH` names an exported file rather than a checkpoint directory."""
    p = Path(path)
    return p.suffix in SUFFIXES and not p.is_dir()


def _ort_errors() -> tuple[type[BaseException], ...]:
    """onnxruntime's own exception types (InvalidProtobuf, Fail, ...: plain Exception subclasses)."""
    try:
        from onnxruntime.capi import onnxruntime_pybind11_state as state
    except ImportError:
        return ()
    return tuple(o for o in vars(state).values() if isinstance(o, type) and issubclass(o, Exception))


# what reading a damaged or foreign exported file raises (torch.jit.load, onnxruntime, json, base64)
_DAMAGE = (KeyError, TypeError, AttributeError, IndexError, ValueError, RuntimeError, OSError, EOFError)


def _first_line(e: BaseException, limit: int = 200) -> str:
    lines = [s.strip() for s in str(e).splitlines() if s.strip()]
    s = lines[0] if lines else ""
    return s if len(s) <= limit else s[: limit - 3] + "..."


def _not_exported(path: Path, e: BaseException) -> UserError:
    return UserError(f"{path} is damaged or not a model written by `seqlab export` ({type(e).__name__}: "
                     f"{_first_line(e)}); export it again")


class Graphs:
    """The graphs of one exported file; `run(name, *tensors)` -> tuple of CPU tensors."""

    def __init__(self, path: str | Path):
        path = Path(path)
        if not path.is_file():
            raise UserError(f"{path}: no such file; export one with `seqlab export --model RUN --out {path.name}`")
        if path.stat().st_size == 0:
            raise UserError(f"{path} is empty (a failed or interrupted export); export it again")
        self.format = SUFFIXES[path.suffix]
        try:
            self.meta = self._open_onnx(path) if self.format == "onnx" else self._open_torchscript(path)
            if not all(isinstance(self.meta[k], dict) for k in META):
                raise TypeError("its embedded JSON is not config, vocab and export objects")
            self.spec = self.meta["export.json"]["graphs"]
            if not isinstance(self.spec, dict) or "forward" not in self.spec:
                raise KeyError("graphs")
        except UserError:
            raise
        except (*_DAMAGE, *_ort_errors()) as e:  # json.JSONDecodeError and binascii.Error are ValueErrors
            raise _not_exported(path, e) from None

    def _open_onnx(self, path: Path) -> dict:
        from seqlab.extras import require

        ort = require("onnxruntime", "running .onnx models")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = torch.get_num_threads()
        opts.log_severity_level = 3

        def session(model):
            try:
                return ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
            except Exception as e:  # onnxruntime raises its own exception types for unreadable models
                raise ValueError(_first_line(e)) from None

        main = session(str(path))
        props = main.get_modelmeta().custom_metadata_map
        meta = {k: json.loads(props[f"seqlab.{k}"]) for k in META}
        self.sessions = {"forward": main}
        for name in meta["export.json"]["graphs"]:
            if name != "forward":
                self.sessions[name] = session(base64.b64decode(props[f"seqlab.graph.{name}"]))
        return meta

    def _open_torchscript(self, path: Path) -> dict:
        files = dict.fromkeys(META, "")
        with warnings.catch_warnings():  # torch 2.9+ calls TorchScript deprecated; it still runs
            warnings.simplefilter("ignore", DeprecationWarning)
            self.module = torch.jit.load(str(path), map_location="cpu", _extra_files=files)
        self.module.eval()
        return {k: json.loads(v) for k, v in files.items()}

    @torch.no_grad()
    def run(self, name: str, *tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
        if self.format == "torchscript":
            out = getattr(self.module, name)(*tensors)
            return tuple(out) if isinstance(out, (tuple, list)) else (out,)
        sess = self.sessions[name]
        wanted = {i.name for i in sess.get_inputs()}  # the exporter drops inputs a graph never reads
        feeds = {n: t.detach().cpu().numpy() for n, t in zip(self.spec[name]["inputs"], tensors) if n in wanted}
        return tuple(torch.from_numpy(x) for x in sess.run(None, feeds))


class _Standin:
    """What the pipelines use of an nn.Module: eval/train, parameters() (for the device), cfg."""

    training = False

    Config = None  # the model's config class (from_json of config.json's "model")

    def __init__(self, graphs: Graphs, cfg):
        self.graphs, self.cfg = graphs, cfg
        self._device_probe = torch.zeros(0)

    @classmethod
    def from_export(cls, graphs: Graphs, model: dict, info: dict) -> _Standin:
        model = {k: v for k, v in model.items() if k != "head"}  # speech: which head, not a model setting
        return cls(graphs, cls.Config.from_json(model))

    def eval(self):
        return self

    def train(self, mode: bool = True):
        if mode:
            raise UserError("an exported model runs inference only; train the checkpoint directory instead")
        return self

    def to(self, device):
        return self

    def parameters(self):
        yield self._device_probe  # exported graphs run on the CPU


class ClassifierRuntime(_Standin):
    Config = ClassifierConfig

    def __call__(self, ids: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """ids (batch, time) [or features (batch, time, input_dim)], lengths (batch,) -> logits (batch, classes)."""
        if lengths is None:
            lengths = torch.full((ids.shape[0],), ids.shape[1], dtype=torch.long)
        return self.graphs.run("forward", ids, lengths)[0]


class LMRuntime(_Standin):
    Config = LMConfig

    def __call__(self, ids: torch.Tensor, state=None):
        """ids (batch, time), state h (layers, batch, hidden) or (h, c) or None
        -> (logits (batch, time, vocab), new state)."""
        enc = self.cfg.encoder
        if enc.cell == "none":
            return self.graphs.run("forward", ids)[0], None
        if state is None:
            zeros = torch.zeros(enc.layers, ids.shape[0], enc.hidden)
            state = (zeros, zeros) if enc.cell == "lstm" else zeros
        out = self.graphs.run("forward", ids, *(state if isinstance(state, tuple) else (state,)))
        return out[0], (out[1], out[2]) if len(out) == 3 else out[1]


class Seq2SeqRuntime(_Standin):
    """`encode` and `step` as in `Seq2Seq`, for greedy and beam search."""

    Config = Seq2SeqConfig

    def __init__(self, graphs: Graphs, cfg):
        super().__init__(graphs, cfg)
        self.attention = True if cfg.attention != "none" else None
        self.mem_names, self.state_names = seq2seq_names(cfg)

    def encode(self, src: torch.Tensor, lengths: torch.Tensor) -> tuple[Memory, DecoderState]:
        out = self.graphs.run("forward", src, lengths)
        k = len(self.mem_names)
        mem, st = dict(zip(self.mem_names, out[:k])), dict(zip(self.state_names, out[k:]))
        return Memory(mem["keys"], mem.get("proj"), mem["mask"]), DecoderState(st["h"], st.get("c"), st.get("feed"))

    def step(self, y: torch.Tensor, state: DecoderState, mem: Memory):
        st = [getattr(state, n) for n in self.state_names]
        out = self.graphs.run("step", y, *st, *(getattr(mem, n) for n in self.mem_names))
        new = dict(zip(self.state_names, out[1 : 1 + len(st)]))
        w = out[-1] if self.attention else None
        return out[0], DecoderState(new["h"], new.get("c"), new.get("feed")), w


class TaggerRuntime(_Standin):
    """`decode(batch)` as in `Tagger`: emissions from the graph, then Viterbi (CRF) or argmax."""

    Config = TaggerConfig

    @classmethod
    def from_export(cls, graphs: Graphs, model: dict, info: dict) -> TaggerRuntime:
        return cls(graphs, cls.Config.from_json(model), info.get("crf"))

    def __init__(self, graphs: Graphs, cfg, crf: dict | None):
        super().__init__(graphs, cfg)
        self.crf = None
        if crf is not None:
            self.crf = CRF(cfg.num_tags)
            with torch.no_grad():
                for k in ("transitions", "start", "end"):
                    getattr(self.crf, k).copy_(torch.tensor(crf[k]))

    @torch.no_grad()
    def decode(self, b) -> torch.Tensor:
        t = {"words": b.words, "lengths": b.lengths, "chars": b.chars, "char_lengths": b.char_lengths,
             "form_index": b.form_index, "case": b.case}
        em = self.graphs.run("forward", *(t[n] for n in tag_inputs(self.cfg)))[0]
        mask = lengths_to_mask(b.lengths, b.words.shape[1])
        if self.crf is not None:
            return self.crf.decode(em, mask)
        return em.argmax(-1).masked_fill(~mask, -100)


class ForecasterRuntime(_Standin):
    Config = ForecasterConfig

    def __call__(self, x: torch.Tensor, future: torch.Tensor | None = None, y=None) -> ForecastOutput:
        if future is None:
            future = x.new_zeros(x.shape[0], self.cfg.horizon, self.cfg.covariates)
        out = self.graphs.run("forward", x, future)
        return ForecastOutput(out[0], out[1] if len(out) > 1 else None)


class CTCRuntime(_Standin):
    """The speech acoustic model's forward pass (no streaming state: stream with the checkpoint)."""

    Config = CTCConfig

    def __call__(self, x: torch.Tensor, lengths: torch.Tensor | None = None, state=None, return_state: bool = False):
        """feats (batch, time, feat_dim), lengths (batch,) -> (log_probs (batch, time', labels), lengths')."""
        if state is not None or return_state:
            raise UserError("an exported speech model transcribes whole recordings; --stream needs the checkpoint "
                            "directory")
        if lengths is None:
            lengths = torch.full((x.shape[0],), x.shape[1], dtype=torch.long)
        logp, out_len = self.graphs.run("forward", x, lengths)
        return logp, out_len


def load_model(path: str | Path, task: str, build, device: str = "cpu") -> tuple[dict, dict, torch.nn.Module]:
    """(config, vocab JSON, model in eval mode) from a run or checkpoint directory, or from a file written
    by `seqlab export` (NAME.onnx / NAME.pt). `build(cfg["model"])` makes the eager model of the task."""
    if is_exported(path):
        return load(path, task)
    ckpt, cfg, v = open_checkpoint(path, task)
    try:
        model = build(cfg["model"])
    except (KeyError, TypeError, ValueError) as e:  # config.json's "model" settings were edited or damaged
        raise UserError(f"{ckpt / 'config.json'} is damaged (its \"model\" settings do not build a model: "
                        f"{type(e).__name__}: {_first_line(e)}); retrain, or restore the file") from None
    load_weights(model, ckpt, pick_device(device))
    return cfg, v, model.eval()


def load(path: str | Path, task: str) -> tuple[dict, dict, _Standin]:
    """(config.json, vocab.json, model stand-in) of an exported file, checked to belong to `task`."""
    g = Graphs(path)
    cfg, vocab, info = g.meta["config.json"], g.meta["vocab.json"], g.meta["export.json"]
    if cfg.get("task") != task:
        raise UserError(f"{path} is a '{cfg.get('task')}' model, not '{task}'; use `seqlab {cfg.get('task')} ...` "
                        f"with it, or give a {task} model")
    try:
        model = RUNTIMES[info["kind"]].from_export(g, cfg["model"], info)
    except (KeyError, TypeError, ValueError, AttributeError) as e:  # the embedded config.json is damaged
        raise _not_exported(Path(path), e) from None
    return cfg, vocab, model


RUNTIMES = {"classify": ClassifierRuntime, "lm": LMRuntime, "seq2seq": Seq2SeqRuntime, "tag": TaggerRuntime,
            "forecast": ForecasterRuntime, "ctc": CTCRuntime}  # graph kind (export.json "kind") -> stand-in
