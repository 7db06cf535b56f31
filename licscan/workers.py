"""Worker processes: forked (they inherit the parent's loaded tables), they take what every task shares once (the
pool's initializer) and end with their parent. Generic: it knows nothing of what the tasks do (``licscan.scan.feed``
feeds them batches of files, a bounded window at a time, never one pickled task per file up front)."""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys
import threading
import time
from multiprocessing.context import BaseContext


def fork_context() -> BaseContext | None:
    """The ``fork`` start method where the platform has it (workers inherit the parent's loaded tables), else the
    default."""
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


__all__ = ["die_with_parent", "fork_context"]
