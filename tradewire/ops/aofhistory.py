"""Removing the AOF files Redis no longer needs, slowly enough that no write waits for it.

After each AOF rewrite Redis 7 deletes the files the rewrite replaced, for tradewire's journal a
gigabyte or more, all at once. The blocks of a deleted file are freed in a filesystem journal
commit (ext4; with a ``discard`` mount, common on cloud disks, each freed range is also trimmed
then), and every ``fdatasync`` issued meanwhile waits for that commit: with ``appendfsync always``
Redis's main thread, which syncs before it answers anyone, stalled for 50-200 ms just after each
rewrite, and so did every command in flight (the journal-to-publish latency's worst moment).

The embedded Redis therefore runs with ``aof-disable-auto-gc yes`` (Redis keeps the replaced
files, marked as history in its manifest) and an :class:`AofHistorySweeper` beside it shrinks them
a few megabytes at a time, then lets Redis forget the emptied files. Measured on a 2-vCPU cloud VM
(ext4, ``discard``): a 2.4 KB append's ``fdatasync`` waited up to 30 ms while a 1 GB file was
deleted beside it, and up to 1.2 ms while the file was shrunk by 4 MB every 10 ms (about 3 s for
1 GB); ``bench/aof_history.py`` measures it through Redis. The sweeper goes slower still (about
10 s a round, see ``SPREAD_SECONDS``).
"""

from __future__ import annotations

import logging
import math
import os
import shlex
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Final

import redis

__all__ = [
    "AUTO_GC",
    "SPREAD_SECONDS",
    "STEP_PAUSE",
    "SWEEP_EVERY",
    "AofHistorySweeper",
    "forget_history",
    "history_files",
    "shrink",
    "step_for",
]

log = logging.getLogger(__name__)

#: A round's files are freed over about this long, in truncations ``STEP_PAUSE`` apart of at least
#: ``LEAST_STEP`` and at most ``MOST_STEP`` bytes: each step's freeing is a small commit of its own
#: that a concurrent ``fdatasync`` barely notices. 4 MB every 10 ms (1.5 GB in 4 s) still slowed
#: the engine's commands for those seconds at 10,000/s under ``always``; 1 MB every 10 ms did not.
#: Ten seconds keeps the sweep ahead of the AOF's growth at full throughput (~135 MB/s: a rewrite
#: every 7-8 s at the least): a larger history is swept in larger steps.
SPREAD_SECONDS: Final = 10.0
STEP_PAUSE: Final = 0.01
LEAST_STEP: Final = 1 << 20
MOST_STEP: Final = 64 << 20
#: Redis 7's setting that keeps replaced AOF files (as history) instead of deleting them.
AUTO_GC: Final = "aof-disable-auto-gc"
#: How often the manifest is looked at: a rewrite comes every tens of seconds at the most.
SWEEP_EVERY: Final = 1.0


def history_files(aof_dir: Path, appendfilename: str = "appendonly.aof") -> list[Path]:
    """The files that Redis's manifest in ``aof_dir`` marks as history (``type h``): replaced by a
    rewrite, never read again. An absent manifest (Redis before 7, or no AOF yet) has none."""
    try:
        text = (aof_dir / f"{appendfilename}.manifest").read_text()
    except FileNotFoundError:
        return []
    found = []
    for line in text.splitlines():
        fields = shlex.split(line)  # Redis quotes a name with spaces or quotes in it
        entry = dict(zip(fields[::2], fields[1::2], strict=False))
        name = entry.get("file")
        # a name with a directory in it is no file of this AOF's: never touch what it points at
        if entry.get("type") == "h" and name and os.path.basename(name) == name and name not in (".", ".."):
            found.append(aof_dir / name)
    return found


def step_for(
    total: int,
    *,
    spread: float = SPREAD_SECONDS,
    pause: float = STEP_PAUSE,
    least: int = LEAST_STEP,
    most: int = MOST_STEP,
) -> int:
    """The truncation step that frees ``total`` bytes in about ``spread`` seconds."""
    if spread <= 0:
        return most
    return min(most, max(least, math.ceil(total * pause / spread)))


def shrink(path: Path, stopping: threading.Event, *, step: int, pause: float = STEP_PAUSE) -> bool:
    """Truncate ``path`` to nothing, ``step`` bytes at a time with ``pause`` seconds between; False
    when ``stopping`` was set first (the file is then left part-shrunk, still history)."""
    try:
        fd = os.open(path, os.O_WRONLY)
    except FileNotFoundError:
        return True
    try:
        size = os.fstat(fd).st_size
        while size > 0:
            size = max(0, size - step)
            os.ftruncate(fd, size)
            if size and stopping.wait(pause):
                return False
    finally:
        os.close(fd)
    return True


def forget_history(client: redis.Redis) -> None:
    """Have Redis delete the (emptied) history files and drop them from its manifest: turning its
    own deletion on does it at once, and the same transaction turns it off again."""
    with client.pipeline(transaction=True) as pipe:
        pipe.config_set(AUTO_GC, "no")
        pipe.config_set(AUTO_GC, "yes")
        pipe.execute()


class AofHistorySweeper:
    """A daemon thread that empties the history files of the AOF in ``aof_dir`` and then calls
    ``forget`` (which has Redis drop them from its manifest, see :func:`forget_history`).

    ``forget`` runs only when the manifest still names exactly the files just emptied: a rewrite
    that ended meanwhile made new history, which Redis would delete in one go."""

    def __init__(
        self,
        aof_dir: Path,
        forget: Callable[[], None],
        *,
        appendfilename: str = "appendonly.aof",
        every: float = SWEEP_EVERY,
        spread: float = SPREAD_SECONDS,
        pause: float = STEP_PAUSE,
        least: int = LEAST_STEP,
        most: int = MOST_STEP,
    ) -> None:
        self._dir = aof_dir
        self._forget = forget
        self._name = appendfilename
        self._every = every
        self._spread = spread
        self._pause = pause
        self._least = least
        self._most = most
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="aof-history-sweeper", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def sweep(self) -> bool:
        """One round: empty every history file, then have Redis forget them; whether any were."""
        files = history_files(self._dir, self._name)
        if not files:
            return False
        total = sum(path.stat().st_size for path in files if path.exists())
        step = step_for(total, spread=self._spread, pause=self._pause, least=self._least, most=self._most)
        for path in files:
            if not shrink(path, self._stopping, step=step, pause=self._pause):
                return False
        if history_files(self._dir, self._name) != files:
            return False  # a rewrite ended meanwhile: its files are swept next round
        self._forget()
        return True

    def _run(self) -> None:
        while not self._stopping.wait(self._every):
            try:
                self.sweep()
            except Exception as exc:  # a sweep that fails is tried again, never fatal
                log.warning("sweeping the AOF history in %s failed, tried again: %s", self._dir, exc)
