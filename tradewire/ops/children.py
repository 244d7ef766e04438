"""Child processes that stop when their parent dies, however it dies (Linux).

``tradewire up`` starts redis-server, the engine, the gateway and the journal archive each in its own
session, so that a Ctrl-C in a terminal reaches ``up`` alone and ``up`` stops them in order. The price:
an ``up`` killed with SIGKILL (the OOM killer, ``kill -9``, a container runtime) could stop none of
them, and they held its port and data directory for ever. So each child asks the kernel, between fork
and exec, for SIGTERM when its parent dies (``prctl(PR_SET_PDEATHSIG)``) and then stops as it would at
``up``'s own stop: Redis fsyncs its append-only file, the engine finishes its batch. Other systems have
no such call; there the children are started as before.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
from collections.abc import Callable
from typing import Any

PR_SET_PDEATHSIG = 1
"""``<linux/prctl.h>``."""


def _load_prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl: Any = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    return prctl  # type: ignore[no-any-return]


_PRCTL = _load_prctl()


def die_with_parent(signum: signal.Signals = signal.SIGTERM) -> Callable[[], None] | None:
    """A ``preexec_fn`` that has the child sent ``signum`` when this process dies, or None where that
    cannot be asked for (not Linux, or not the main thread).

    The kernel sends the signal when the *thread* that forked the child ends, not the process: a child
    forked from a worker thread would be stopped when that thread returns to its pool. Only the main
    thread lives as long as the process, so only it gets a death signal for its children.
    """
    prctl = _PRCTL
    if prctl is None or threading.current_thread() is not threading.main_thread():
        return None
    parent = os.getpid()

    def arm() -> None:
        if signum != signal.SIGKILL:  # (which no handler can take)
            # the parent's handler, inherited until exec, would take the signal and let the child live on
            signal.signal(signum, signal.SIG_DFL)
        prctl(PR_SET_PDEATHSIG, int(signum), 0, 0, 0)
        if os.getppid() != parent:  # the parent died between fork and prctl: too late for the kernel
            os._exit(1)

    return arm
