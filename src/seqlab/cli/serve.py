"""`seqlab serve`: the RNN unroller and the trained models' pages as a local web app.

    seqlab serve --models runs/ --port 8000        # then open http://127.0.0.1:8000

It listens on 127.0.0.1 (this machine only) unless --host says otherwise, and shows only the runs
under --models (see `seqlab.web.registry`).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from seqlab.errors import UserError
from seqlab.extras import require

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def cmd_serve(a: argparse.Namespace) -> int:
    require("fastapi", "`seqlab serve`")
    uvicorn = require("uvicorn", "`seqlab serve`")
    from seqlab.web.app import create_app
    models = a.models
    if models is None and Path("runs").is_dir():
        models = "runs"
    if models is not None and not Path(models).is_dir():
        raise UserError(f"--models {models}: no such directory; give the directory holding your training runs")
    if not 0 < a.port < 65536:
        raise UserError(f"--port {a.port} is not a port number (1-65535)")
    if a.threads:
        import torch

        torch.set_num_threads(a.threads)
    loopback = a.host in LOOPBACK
    app = create_app(models, loopback_only=loopback)
    shown = f"[{a.host}]" if ":" in a.host else a.host
    print(f"seqlab: serving http://{shown}:{a.port}  (models from {models or 'nowhere: toy cells only'}; "
          "Ctrl-C stops)")
    if not loopback:
        print(f"seqlab: warning: --host {a.host} lets other machines use this server and its models")
    uvicorn.run(app, host=a.host, port=a.port, log_level=a.log_level)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="the RNN unroller and your trained models in the browser (local web app)",
                       description="Serve a local web app: the RNN unroller (toy cells and trained checkpoints, "
                                   "step by step), text generation, translation with attention, tagging, "
                                   "forecasts and training curves for the runs under --models.")
    p.add_argument("--models", default=None,
                   help="directory of training runs to show (default: ./runs if it exists; without one only the "
                        "toy cells are there)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default: %(default)s, this machine only; 0.0.0.0 opens it to "
                        "the network)")
    p.add_argument("--port", type=int, default=8000, help="port to listen on (default: %(default)s)")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (default: 0 = torch's own choice)")
    p.add_argument("--log-level", default="warning", choices=("critical", "error", "warning", "info", "debug"),
                   help="how much the server logs (default: %(default)s; info logs every request)")
    p.set_defaults(func=cmd_serve)
