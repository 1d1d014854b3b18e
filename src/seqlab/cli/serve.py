"""`seqlab serve`: the RNN unroller and the trained models' pages as a local web app.

    seqlab serve --models runs/ --port 8000        # then open http://127.0.0.1:8000

It listens on 127.0.0.1 (this machine only) unless --host says otherwise, and shows only the runs
under --models (see `seqlab.web.registry`). A loopback address (all of 127.0.0.0/8, ::1, localhost)
keeps the guard against DNS rebinding (requests must name the host they were sent to) and needs no
warning; any other address opens the server to other machines and says so. The socket is bound
before anything is printed, so the URL shown is one that answers; a port in use or an address
this machine does not have is one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import errno
import ipaddress
import socket
from pathlib import Path

from seqlab.cli.common import num_arg
from seqlab.errors import UserError
from seqlab.extras import require

LOOPBACK_NAMES = ("localhost",)


def is_loopback(host: str) -> bool:
    """Whether `host` is this machine only: 'localhost', or an address in 127.0.0.0/8 or ::1 (also
    written [::1], or IPv4-mapped as ::ffff:127.x.y.z)."""
    name = host.strip().lower()
    if name in LOOPBACK_NAMES:
        return True
    try:
        ip = ipaddress.ip_address(name[1:-1] if name.startswith("[") and name.endswith("]") else name)
    except ValueError:
        return False  # a host name other than localhost: it may resolve to any address
    mapped = getattr(ip, "ipv4_mapped", None)
    return ip.is_loopback or (mapped is not None and mapped.is_loopback)


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on (host, port), or a one-line UserError saying why not."""
    addr = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        family, kind, proto, _, where = socket.getaddrinfo(addr, port, type=socket.SOCK_STREAM,
                                                           flags=socket.AI_PASSIVE)[0]
    except (socket.gaierror, UnicodeError) as e:
        why = getattr(e, "strerror", None) or str(e)
        raise UserError(f"--host {host}: not an address or known host name ({why}); give an address of this "
                        "machine, e.g. 127.0.0.1 or 0.0.0.0") from None
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(where)
        sock.listen(2048)
    except OSError as e:
        sock.close()
        if e.errno == errno.EADDRINUSE:
            raise UserError(f"port {port} on {host} is already in use (another server?); stop it or choose "
                            "another --port") from None
        if e.errno == errno.EADDRNOTAVAIL:
            raise UserError(f"--host {host} is not an address of this machine; use 127.0.0.1 (this machine "
                            "only) or 0.0.0.0 (every interface)") from None
        if e.errno in (errno.EACCES, errno.EPERM):
            raise UserError(f"not allowed to listen on port {port} ({e.strerror}); ports below 1024 need "
                            "privileges, choose another --port") from None
        raise UserError(f"cannot listen on {host} port {port} ({e.strerror or e})") from None
    sock.set_inheritable(True)
    return sock


def run_server(app, sock: socket.socket, log_level: str) -> None:
    """Serve `app` on the bound socket `sock` until Ctrl-C."""
    uvicorn = require("uvicorn", "`seqlab serve`")
    uvicorn.Server(uvicorn.Config(app, log_level=log_level)).run(sockets=[sock])


def cmd_serve(a: argparse.Namespace) -> int:
    require("fastapi", "`seqlab serve`")
    require("uvicorn", "`seqlab serve`")
    from seqlab.web.app import create_app
    models = a.models
    if models is None and Path("runs").is_dir():
        models = "runs"
    if models is not None and not Path(models).is_dir():
        raise UserError(f"--models {models}: no such directory; give the directory holding your training runs")
    if a.threads:
        import torch

        torch.set_num_threads(a.threads)
    loopback = is_loopback(a.host)
    sock = bind(a.host, a.port)
    try:
        app = create_app(models, loopback_only=loopback, host=a.host)
        shown = a.host if a.host.startswith("[") or ":" not in a.host else f"[{a.host}]"
        print(f"seqlab: serving http://{shown}:{a.port}  (models from {models or 'nowhere: toy cells only'}; "
              "Ctrl-C stops)")
        if not loopback:
            print(f"seqlab: warning: --host {a.host} lets other machines use this server and its models")
        run_server(app, sock, a.log_level)
    finally:
        sock.close()
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
    p.add_argument("--port", type=num_arg(int, 1, 65535), default=8000, help="port to listen on (default: %(default)s)")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (default: 0 = torch's own choice)")
    p.add_argument("--log-level", default="warning", choices=("critical", "error", "warning", "info", "debug"),
                   help="how much the server logs (default: %(default)s; info logs every request)")
    p.set_defaults(func=cmd_serve)
