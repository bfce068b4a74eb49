"""Command line: one module per subcommand, imported only when that subcommand runs.

Each module defines ``HELP`` (one line), ``add_arguments(parser)`` and ``run(args) -> int``.
`EngineError` from any command becomes a one-line ``error: ...`` on stderr and exit code 2.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import sys

# name -> module (relative to this package). Order is the order shown in --help.
COMMANDS = {
    "preview": ".preview",
    "prepare": ".prepare",
    "edit": ".edit",
    "bench": ".bench",
    "eval": ".evaluate",
    "models": ".models",
    "tiny-models": ".tiny_models",
}


def _available_commands():
    for name, module_name in COMMANDS.items():
        try:
            yield name, importlib.import_module(module_name, __name__)
        except ModuleNotFoundError as exc:
            # A command whose module is not written yet is simply absent; a missing third-party
            # dependency inside a written module is a real error and must surface.
            if exc.name and exc.name.startswith(__name__):
                continue
            raise


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m engine", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, module in _available_commands():
        p = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv=None) -> int:
    from ..errors import EngineError

    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args._run(args) or 0)
    except EngineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
