"""Worker processes: forked (they inherit the parent's loaded tables), they take what every task shares once (the
pool's initializer) and end with their parent. Generic: it knows nothing of what the tasks do (``licscan.scan.feed``
feeds them batches of files, a bounded window at a time, never one pickled task per file up front). Also the
garbage collector's view of a long-lived heap (:func:`steady_heap`), before such a fork and after it."""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import gc
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from multiprocessing.context import BaseContext


def fork_context() -> BaseContext | None:
    """The ``fork`` start method where the platform has it (workers inherit the parent's loaded tables), else the
    default."""
    # Imported here: importing multiprocessing costs 6-10 ms of CPU, and every command imports this module
    # (licscan.cli.main: freeze_at_exit), most without a worker to start (licscan inspect of one file).
    import multiprocessing

    return multiprocessing.get_context("fork") if "fork" in multiprocessing.get_all_start_methods() else None


def die_with_parent(parent: int) -> None:
    """Make this (worker) process end when ``parent`` does, so a killed ``licscan`` leaves no workers holding its
    output pipes: Linux ``prctl(PR_SET_PDEATHSIG, SIGKILL)``, elsewhere a thread that watches ``getppid()``."""
    armed = False
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            armed = libc.prctl(1, int(signal.SIGKILL), 0, 0, 0) == 0  # PR_SET_PDEATHSIG = 1 (<linux/prctl.h>)
        except (OSError, AttributeError):
            armed = False
    if os.getppid() != parent:  # the parent died before the signal was armed
        os._exit(1)
    if not armed:
        def watch() -> None:
            while os.getppid() == parent:
                time.sleep(0.5)
            os._exit(1)

        threading.Thread(target=watch, name="licscan-parent-watch", daemon=True).start()


_STEADY = 0  # steady_heap() blocks entered and not left
_AT_EXIT = False  # gc.freeze registered to run at exit
YOUNG = 20_000  # allocations between collections of the youngest generation inside steady_heap() (CPython: 700)


@contextlib.contextmanager
def steady_heap() -> Iterator[Callable[[], None]]:
    """Keep the cyclic garbage collector off the objects alive now (``gc.freeze``) until the outermost such block
    ends (``gc.unfreeze``: they are collectable again, nothing leaks in a long-lived caller). The block gives a
    function that does the same for the objects alive when it is called (a scan's records and inventory: they
    live until the reports are written). Every full collection walks every tracked object: an audit of an
    installed CUDA environment spent 0.4 s of CPU in the collector, half of it walking the loaded modules and the
    scan's records again and again; frozen before a fork, a worker's collections do not walk (nor copy, on write)
    its parent's objects either. When something else froze objects first, the collector is left alone.

    Inside the block the youngest generation is collected every :data:`YOUNG` allocations, not every 700: a scan
    and its judgement make hundreds of thousands of acyclic objects (records arriving from the workers, facts and
    report entries per device image), and the collections that walked them cost 0.11 s of CPU in the parent of
    an audit of the environment tree, a third of it while it judged alone after the scan (0.06 s with YOUNG);
    cycles are rare (about 1,000 objects collected in that whole audit), so the heap they hold stays small."""
    global _STEADY
    if _STEADY == 0 and gc.get_freeze_count():
        yield lambda: None
        return
    _STEADY += 1
    threshold = gc.get_threshold()
    gc.freeze()
    if _STEADY == 1:
        gc.set_threshold(max(threshold[0], YOUNG), *threshold[1:])
    try:
        yield gc.freeze
    finally:
        _STEADY -= 1
        if _STEADY == 0:
            gc.set_threshold(*threshold)
            gc.unfreeze()


def freeze_at_exit() -> None:
    """Freeze the heap when the interpreter exits (once registered): for a process that ends when its one command
    does (the command line). The interpreter's last collection walked every object a scan had left (0.04-0.08 s
    of CPU after an audit of the environment tree had written its reports). Not for a long-lived caller or a test
    session: a frozen object is never collected, and extension modules that count their objects at exit (nanobind)
    would report the frozen ones as leaked."""
    global _AT_EXIT
    if not _AT_EXIT:
        _AT_EXIT = True
        atexit.register(gc.freeze)


__all__ = ["die_with_parent", "fork_context", "freeze_at_exit", "steady_heap"]
