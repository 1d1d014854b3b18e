"""`seqlab export`: a trained checkpoint as one self-contained TorchScript or ONNX file.

    seqlab export --model runs/sst2 --out sst2.onnx          # ONNX (format from the suffix)
    seqlab export --model runs/sst2 --out sst2.pt            # TorchScript
    seqlab classify predict --model sst2.onnx "a fine film"  # the same predictions, through onnxruntime

The file holds the task's inference graphs (`seqlab.export.graphs`) with dynamic batch and time axes
and, as JSON text, the checkpoint's config.json and vocab.json (tokenizer, vocabularies, scalers), so
`predict` needs nothing else. ONNX: the main graph is the model; a second graph (the seq2seq decoder
step) is a complete ONNX model stored base64 in the metadata property 'seqlab.graph.step'; the JSON
files are the properties 'seqlab.config.json', 'seqlab.vocab.json', 'seqlab.export.json'. TorchScript:
the graphs are the module's methods (forward, step) and the JSON files are its extra files.
After writing, the exported graphs are run against the eager model on random padded batches of
1 and 7 sequences; the largest difference is printed (and must be below 1e-4).
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import warnings
from pathlib import Path

import torch
from torch import nn

from seqlab import __version__
from seqlab.errors import UserError
from seqlab.export.graphs import GraphSpec, onnx_friendly, sample_inputs, specs
from seqlab.export.runtime import SUFFIXES, Graphs
from seqlab.pipelines.base import write_bytes_atomic
from seqlab.train.checkpoint import load_weights, read_json
from seqlab.train.run_dir import resolve_checkpoint

FORMATS = ("onnx", "torchscript")
TOLERANCE = 1e-4
OPSET = 17


def eager_model(cfg: dict) -> tuple[str, nn.Module]:
    """(graph kind, model with random weights) for a checkpoint's config.json, from the task's pipeline."""
    from seqlab.pipelines.registry import pipeline_class

    return pipeline_class(cfg.get("task")).graph_model(cfg)


@contextlib.contextmanager
def _quiet():
    """Silence the tracer's Python warnings and the ONNX exporter's native shape-inference notes."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        saved = os.dup(2)
        try:
            with open(os.devnull, "w") as null:
                os.dup2(null.fileno(), 2)
                yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


class _Methods(nn.Module):
    """A TorchScript container: one traced method per graph (forward, step)."""

    def __init__(self, graphs: list[GraphSpec]):
        super().__init__()
        self.graphs = nn.ModuleDict({f"graph_{g.name}": g.module for g in graphs})

    def forward(self, *args):
        return self.graphs["graph_forward"](*args)

    def step(self, *args):
        return self.graphs["graph_step"](*args)


def _onnx_bytes(g: GraphSpec, args: tuple) -> bytes:
    buf = io.BytesIO()
    with onnx_friendly(g.module):
        torch.onnx.export(g.module, args, buf, dynamo=False, opset_version=OPSET, input_names=g.inputs,
                          output_names=g.outputs, dynamic_axes={k: v for k, v in g.dynamic.items()
                                                                if k in g.inputs + g.outputs})
    return buf.getvalue()


def _write_onnx(graphs: list[GraphSpec], samples: dict, meta: dict[str, dict], out: Path) -> None:
    from seqlab.extras import require

    onnx = require("onnx", "exporting to ONNX")
    require("onnxscript", "exporting to ONNX")

    main = onnx.load_from_string(_onnx_bytes(graphs[0], samples[graphs[0].name]))
    props = {f"seqlab.{k}": json.dumps(v) for k, v in meta.items()}
    for g in graphs[1:]:
        props[f"seqlab.graph.{g.name}"] = base64.b64encode(_onnx_bytes(g, samples[g.name])).decode()
    for k, v in props.items():
        main.metadata_props.add(key=k, value=v)
    main.producer_name, main.producer_version = "seqlab", __version__
    write_bytes_atomic(out, main.SerializeToString())


def _write_torchscript(graphs: list[GraphSpec], samples: dict, meta: dict[str, dict], out: Path) -> None:
    container = _Methods(graphs).eval()
    traced = torch.jit.trace_module(container, {g.name: samples[g.name] for g in graphs}, check_trace=False)
    buf = io.BytesIO()
    torch.jit.save(traced, buf, _extra_files={k: json.dumps(v) for k, v in meta.items()})
    write_bytes_atomic(out, buf.getvalue())


@torch.no_grad()
def max_difference(kind: str, model: nn.Module, graphs: Graphs, sizes=((1, 6), (7, 6), (7, 11))) -> float:
    """Largest |exported - eager| over every output of every graph, on random padded batches."""
    worst = 0.0
    eager = {g.name: g.module for g in specs(kind, model)}
    for batch, time in sizes:
        for name, args in sample_inputs(kind, model, batch, time, seed=batch * 100 + time).items():
            for a, b in zip(eager[name](*args), graphs.run(name, *args)):
                if a.dtype == torch.bool:
                    worst = max(worst, float((a != b).any()))
                else:
                    worst = max(worst, float((a.float() - b.float()).abs().max()) if a.numel() else 0.0)
    return worst


def export(model_path: str | Path, out: str | Path, fmt: str | None = None) -> dict:
    """Export the checkpoint at `model_path` to `out`; returns {task, format, max_difference, bytes}."""
    out = Path(out)
    if out.is_dir():
        raise UserError(f"--out {out} is a directory; give a file name, e.g. {out / 'model.onnx'}")
    fmt = fmt or SUFFIXES.get(out.suffix)
    if fmt not in FORMATS:
        raise UserError(f"--out {out}: give a name ending in .onnx, .pt or .ts, or choose --format")
    if out.suffix not in SUFFIXES or SUFFIXES[out.suffix] != fmt:
        ends = " or ".join(k for k, v in SUFFIXES.items() if v == fmt)
        raise UserError(f"--out {out}: a {fmt} file must end in {ends} (predict tells the formats apart by the suffix)")
    ckpt = resolve_checkpoint(model_path)
    cfg, vocab = read_json(ckpt, "config.json"), read_json(ckpt, "vocab.json")
    kind, model = eager_model(cfg)
    load_weights(model, ckpt, "cpu")
    model.eval()
    graphs = specs(kind, model)
    samples = sample_inputs(kind, model, 3, 7)
    info = {"task": cfg["task"], "kind": kind, "format": fmt, "seqlab": __version__, "torch": torch.__version__,
            "graphs": {g.name: {"inputs": g.inputs, "outputs": g.outputs} for g in graphs}}
    if kind == "tag" and model.crf is not None:
        info["crf"] = {k: getattr(model.crf, k).tolist() for k in ("transitions", "start", "end")}
    meta = {"config.json": cfg, "vocab.json": vocab, "export.json": info}
    with _quiet():
        (_write_onnx if fmt == "onnx" else _write_torchscript)(graphs, samples, meta, out)
    diff = max_difference(kind, model, Graphs(out))
    if diff > TOLERANCE:
        raise UserError(f"{out}: the exported model differs from the checkpoint by {diff:.2e} (> {TOLERANCE}); "
                        "please report this with the model's config.json")
    return {"task": cfg["task"], "format": fmt, "max_difference": diff, "bytes": out.stat().st_size}
