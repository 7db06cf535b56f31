"""licscan: does this build output comply with NVIDIA's CUDA EULA and the licences of the NVIDIA parts inside it?

Exit codes (README.md, "Exit codes"): 0 clean; 1 findings at or above --fail-on; 2 usage, configuration, rule-pack
or output error; 3 scan incomplete; 4 internal error (a licscan bug); 130 interrupted (SIGINT). Every error ends
in one line on standard error, never a traceback (LICSCAN_DEBUG=1 adds the traceback of an internal error).

One module per command (``main_audit``, ``main_sbom``, ``main_inspect``), each with ``configure(subparsers)`` and
``execute(args) -> int``; ``main_rules`` (``rules`` and ``waive``) sets each parser's ``func``. This module parses,
dispatches and turns every failure into one line and an exit code.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Callable
from types import FrameType

from licscan import __version__
from licscan.cli import main_audit, main_inspect, main_rules, main_sbom
from licscan.cli.common import ENCODING_ERRORS, OutputError, say, write_outputs
from licscan.findings import ExitCode

__all__ = ["OutputError", "build_parser", "main", "write_outputs"]

_COMMANDS = {"audit": main_audit, "sbom": main_sbom, "inspect": main_inspect}

_DESCRIPTION = ("Does this build output comply with NVIDIA's CUDA EULA and the licences of the NVIDIA parts inside "
                "it? An engineering reading of the licence texts, not legal advice.")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="licscan", description=_DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"licscan {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    main_audit.configure(commands)
    main_sbom.configure(commands)
    main_rules.configure(commands)
    main_inspect.configure(commands)
    return parser


def _interrupt_handler() -> Callable[[int, FrameType | None], None]:
    """SIGINT for this process and the worker processes it forks (inspect's parallel decode, the scan's pool): the
    process that started the command raises KeyboardInterrupt (one line, exit 130, below) and its pool ends the
    workers; a forked worker, which inherits the handler and gets the same SIGINT from the terminal, ignores it.
    (A worker that died of it printed a traceback, and could die holding the pool's queue lock: the parent then
    waited forever in Pool.terminate.)"""
    started_by = os.getpid()

    def interrupted(signum: int, frame: FrameType | None) -> None:
        if os.getpid() != started_by:
            return
        if _in_native_call(frame):
            # Inside a call into lief or its import: lief's bindings (nanobind) turn a Python exception raised there
            # into std::terminate (exit -6 and a C++ message). Ask again in 50 ms, once the call has returned.
            signal.signal(signal.SIGALRM, interrupted)
            signal.setitimer(signal.ITIMER_REAL, 0.05)
            return
        raise KeyboardInterrupt

    return interrupted


#: Modules whose calls into native code must not be interrupted by a Python exception (see _interrupt_handler).
_NATIVE_CALLERS = frozenset({"licscan.binary.pe", "lief"})


def _in_native_call(frame: FrameType | None) -> bool:
    while frame is not None:
        name = frame.f_globals.get("__name__") or ""
        if name in _NATIVE_CALLERS or name.startswith("lief."):
            return True
        frame = frame.f_back
    return False


def main(argv: list[str] | None = None) -> int:
    """Run one command; every failure ends in one line on standard error and an exit code (module docstring).
    Called with the process's own arguments (``argv`` None: the ``licscan`` command, ``python -m licscan``), the
    process ends with it: its heap is frozen at exit (:func:`licscan.workers.freeze_at_exit`)."""
    if argv is None:
        from licscan.workers import freeze_at_exit

        freeze_at_exit()
    previous = None
    try:
        if signal.getsignal(signal.SIGINT) is signal.default_int_handler:  # not when SIGINT is ignored
            previous = signal.signal(signal.SIGINT, _interrupt_handler())
    except ValueError:  # not the main thread: leave signals alone
        previous = None
    try:
        return _run(argv)
    finally:
        if previous is not None:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGINT, previous)


def _run(argv: list[str] | None) -> int:
    try:
        return _main(argv)
    except KeyboardInterrupt:
        say("interrupted")
        return ExitCode.INTERRUPTED
    except OutputError as error:
        say(str(error))
        return ExitCode.USAGE
    except BrokenPipeError:
        # The reader of standard output went away (`licscan audit dist | head -1`): the report did not arrive.
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())  # no second error when Python flushes stdout at exit
        except (OSError, ValueError):
            pass
        say("standard output was closed before the whole report was written")
        return ExitCode.USAGE
    except Exception as error:  # noqa: BLE001 - the one place that turns a licscan bug into one line
        if os.environ.get("LICSCAN_DEBUG"):
            import traceback

            traceback.print_exc()
        say(f"internal error: {type(error).__name__}: {str(error)[:300]} (a licscan bug; LICSCAN_DEBUG=1 shows "
               "the traceback)")
        return ExitCode.INTERNAL


def _main(argv: list[str] | None = None) -> int:
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors=ENCODING_ERRORS)
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        return ExitCode.USAGE if exit_.code not in (0, None) else ExitCode.CLEAN
    command = _COMMANDS.get(args.command)
    if command is not None:
        return int(command.execute(args))
    if hasattr(args, "func"):
        return int(args.func(args))
    return ExitCode.USAGE
