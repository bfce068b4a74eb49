"""Command line: one module per subcommand, imported only when that subcommand runs.

Each module defines ``HELP`` (one line), ``add_arguments(parser)`` and ``run(args) -> int``.
One error path for every command (`main`): an expected failure is one ``error: ...`` line on
stderr naming the input, exit code 2 for usage and input errors, 1 for runtime failures
(a model that fails, a disk that fills, an interruption); no traceback unless ``-v``. An
unexpected error (a bug) prints one line saying where its traceback was logged, exit code 1.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
import time

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

EXIT_RUNTIME = 1
EXIT_INPUT = 2


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (and exit code 2), like every other input error."""

    def error(self, message):
        print(f"error: {message} (see `{self.prog} --help`)", file=sys.stderr)
        raise SystemExit(EXIT_INPUT)


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


def _add_verbosity(p, default):
    g = p.add_mutually_exclusive_group()
    g.add_argument("-v", "--verbose", action="store_true", default=default,
                   help="log details, and show the traceback of any error")
    g.add_argument("-q", "--quiet", action="store_true", default=default,
                   help="print nothing but errors (no progress)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m engine", description=__doc__.splitlines()[0])
    _add_verbosity(parser, False)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)
    for name, module in _available_commands():
        p = sub.add_parser(name, help=module.HELP, description=module.HELP)
        # -v / -q also after the command name; SUPPRESS keeps the value given before it
        _add_verbosity(p, argparse.SUPPRESS)
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def _quiet_libraries(verbose: bool, downloads: bool = False) -> None:
    """Library warnings, log chatter and weight-loading bars would bury the one error line; -v
    shows them. A download (``downloads``) keeps the hub's byte progress bars."""
    if verbose:
        return
    import warnings

    warnings.simplefilter("ignore")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")
    if downloads:
        return
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    for name in ("transformers", "diffusers"):  # already imported (in-process use): tell them too
        if name in sys.modules:
            lib_logging = importlib.import_module(f"{name}.utils.logging")
            lib_logging.disable_progress_bar()
            lib_logging.set_verbosity_error()


def log_path():
    import tempfile
    from pathlib import Path

    return Path(tempfile.gettempdir()) / "diffusion-handles" / f"error-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"


def report_error(exc, verbose: bool, prefix: str = "error") -> int:
    """One line for ``exc`` on stderr; its exit code. The one place that maps failures to codes."""
    from ..errors import CancelledError, EngineError, InputError, ModelNotFoundError

    if isinstance(exc, KeyboardInterrupt):
        print(f"{prefix}: interrupted; finished outputs are kept (rerun the same command to resume)",
              file=sys.stderr)
        return EXIT_RUNTIME
    if isinstance(exc, (InputError, ModelNotFoundError)):
        code = EXIT_INPUT
    elif isinstance(exc, (EngineError, CancelledError)):
        code = EXIT_RUNTIME
    elif isinstance(exc, OSError):  # a disk that fills, a folder that vanished while writing
        from ..output import is_disk_full

        where = f" '{exc.filename}'" if exc.filename else ""
        if is_disk_full(exc):
            exc = RuntimeError(f"disk full writing{where} ({exc.strerror or exc}); free some space and rerun "
                               f"the same command: finished outputs are kept and nothing half-written is")
        else:
            exc = RuntimeError(f"cannot read or write{where}: {exc.strerror or exc}")
        code = EXIT_RUNTIME
    elif isinstance(exc, MemoryError):
        exc = RuntimeError("out of memory; try a smaller --resolution or --frame-batch-size")
        code = EXIT_RUNTIME
    else:
        import traceback

        text = "".join(traceback.format_exception(exc))
        if verbose:
            print(text, file=sys.stderr, end="")
        where = "above"
        try:
            path = log_path()
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            where = str(path)
        except OSError:
            if not verbose:
                where = "not saved; rerun with -v to see it"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        print(f"{prefix}: unexpected {type(exc).__name__}: {first} (a bug; traceback: {where})",
              file=sys.stderr)
        return EXIT_RUNTIME
    if verbose:
        import traceback

        traceback.print_exception(exc, file=sys.stderr)
    message = " ".join(str(exc).split("\n")).strip()
    if isinstance(exc, ModelNotFoundError) and exc.role:
        message += f" ({download_hint(exc.role, exc.override)})"
    print(f"{prefix}: {message}", file=sys.stderr)
    return code


def download_hint(role: str, override=None) -> str:
    """How a command-line user fetches the weights of ``role`` (a ModelNotFoundError's fix)."""
    command = f"python -m engine models download {role}" + (f" --id {override}" if override else "")
    return f"`{command}`, or --models DIR / --{role}-model PATH"


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def install_signal_handlers() -> dict:
    """Ctrl+C and a polite kill (SIGTERM) both stop between writes: temporaries are removed,
    finished frames stay (even when the shell started us with SIGINT ignored, as `cmd &` does).
    Returns the previous handlers."""
    import signal

    previous = {}
    try:
        for sig, handler in ((signal.SIGINT, signal.default_int_handler), (signal.SIGTERM, _interrupt)):
            previous[sig] = signal.signal(sig, handler)
    except ValueError:  # not the main thread (embedded use): leave the handlers alone
        pass
    return previous


def restore_signal_handlers(previous: dict) -> None:
    import signal

    for sig, handler in previous.items():
        signal.signal(sig, handler)


def main(argv=None) -> int:
    from .. import console

    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help (0) and usage errors (2, one line already printed)
        return int(exc.code or 0)
    verbose, quiet = bool(args.verbose), bool(args.quiet)
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    _quiet_libraries(verbose, downloads=args.command == "models")
    console.configure(quiet=quiet)
    previous = install_signal_handlers()
    try:
        return int(args._run(args) or 0)
    except BaseException as exc:  # noqa: BLE001 - the one top-level error path
        if isinstance(exc, SystemExit):
            raise
        return report_error(exc, verbose)
    finally:
        restore_signal_handlers(previous)
