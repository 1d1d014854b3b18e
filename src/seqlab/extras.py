"""Optional parts of seqlab and the `pip install seqlab[...]` extra that brings each one."""

from __future__ import annotations

import importlib

from seqlab.errors import UserError

EXTRAS = {"fastapi": "serve", "uvicorn": "serve", "onnx": "export", "onnxruntime": "export",
          "onnxscript": "export", "statsmodels": "forecast", "tensorboard": "tensorboard", "soundfile": "speech",
          "scipy": "speech", "jiwer": "speech"}


def require(module: str, what: str):
    """Import `module`, or a UserError naming the extra to install for `what`."""
    try:
        return importlib.import_module(module)
    except ImportError:
        extra = EXTRAS.get(module.split(".")[0], "all")
        raise UserError(f"{what} needs the {module.split('.')[0]} package: pip install 'seqlab[{extra}]'") from None
