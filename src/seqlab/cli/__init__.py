"""The `seqlab` command: `seqlab <task> <action> [flags]`; `seqlab <task> <action> --help` for each.

User errors (bad files, wrong flags, a checkpoint of another task) end as one line on stderr
and exit status 2, with no traceback. Ctrl-C saves the training progress and exits with 130.
"""

from __future__ import annotations

import argparse
import signal
import sys

from seqlab import __version__
from seqlab.cli import classify, demo, export, forecast, lm, plot, qa, scratch, serve, speech, tag, translate
from seqlab.cli.common import apply_threads, flag_of
from seqlab.errors import UserError
from seqlab.pipelines.config import ConfigError


class Parser(argparse.ArgumentParser):
    """argparse with its errors (a bad or missing flag) as one line on stderr and exit status 2, like every
    other user error; its sub-commands' parsers are of this class too."""

    def error(self, message: str):
        self.exit(2, f"seqlab: error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    p = Parser(
        prog="seqlab",
        description="Recurrent sequence models (RNN, LSTM, GRU): train them on your files, "
                    "evaluate them, use them.",
        epilog="Start with `seqlab demo`, then `seqlab classify train --help`.",
    )
    p.add_argument("--version", action="version", version=f"seqlab {__version__}")
    sub = p.add_subparsers(dest="task", required=True, metavar="<task>")
    demo.register(sub)
    classify.register(sub)
    lm.register(sub)
    scratch.register(sub)
    translate.register(sub)
    qa.register(sub)
    tag.register(sub)
    forecast.register(sub)
    speech.register(sub)
    serve.register(sub)
    plot.register(sub)
    export.register(sub)
    return p


def _sigterm(signum, frame):  # a polite kill saves progress like Ctrl-C does
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args._argv = list(sys.argv[1:] if argv is None else argv)
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(line_buffering=True)  # progress shows up in logs as it happens
    if argv is None:
        signal.signal(signal.SIGTERM, _sigterm)
    try:
        apply_threads(args)
        return args.func(args)
    except ConfigError as e:  # a parameter: name it as the flag the user typed
        flag = None if e.source else flag_of(args, e.param)
        print(f"seqlab: error: {flag + ' ' + e.message if flag else e}", file=sys.stderr)
        return 2
    except UserError as e:
        print(f"seqlab: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("seqlab: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `seqlab ... | head`
        return 0
