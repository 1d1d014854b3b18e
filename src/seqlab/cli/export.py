"""`seqlab export --model RUN --out FILE.onnx|.pt`: the flags of `seqlab.export.export`."""

from __future__ import annotations

import argparse

import torch

from seqlab.export.export import FORMATS, export


def cmd_export(a: argparse.Namespace) -> int:
    if a.threads:
        torch.set_num_threads(a.threads)
    r = export(a.model, a.out, a.format)
    print(f"wrote {a.out} ({r['format']}, {r['bytes'] / 1e6:.2f} MB, task {r['task']}); largest difference from "
          f"the checkpoint on test batches {r['max_difference']:.1e}; use it with "
          f"`seqlab {r['task']} {'generate' if r['task'] == 'lm' else 'ask' if r['task'] == 'qa' else 'predict'} "
          f"--model {a.out} ...`")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="export a trained model to ONNX or TorchScript for inference",
                       description="Write a checkpoint as one self-contained ONNX or TorchScript file (graphs with "
                                   "dynamic batch and length, plus the vocabularies and settings); every task's "
                                   "predict command accepts the file as --model.")
    p.add_argument("--model", required=True, help="run directory (or checkpoint directory) of any task")
    p.add_argument("--out", required=True, help="file to write: NAME.onnx, or NAME.pt / NAME.ts for TorchScript")
    p.add_argument("--format", choices=FORMATS, default=None,
                   help="onnx or torchscript (default: from the suffix of --out)")
    p.add_argument("--threads", type=int, default=0, help="CPU threads for torch; 0 = torch's default")
    p.set_defaults(func=cmd_export)
