"""Removing the AOF files Redis no longer needs, slowly enough that no write waits for it.

After each AOF rewrite Redis 7 deletes the files the rewrite replaced, for tradewire's journal a
gigabyte or more, all at once. An ``fdatasync`` issued while the filesystem frees that many blocks
waits for it (measured on ext4 mounted with ``discard``, common on cloud disks, which also trims
each freed range): with ``appendfsync always`` Redis's main thread, which syncs before it answers
anyone, stalled for 50-200 ms just after each rewrite, and so did every command in flight (the
journal-to-publish latency's worst moment).

The embedded Redis therefore runs with ``aof-disable-auto-gc yes`` (Redis keeps the replaced
files, marked as history in its manifest) and an :class:`AofHistorySweeper` beside it shrinks them
a little at a time, then lets Redis forget the emptied files. Freeing a file in small truncations
costs a concurrent ``fdatasync`` about a millisecond where deleting it whole cost tens (the
figures, and ``bench/aof_history.py`` which measures it through Redis, in docs/benchmarks.md).

The sweeper never touches what Redis might still read or write: only ``type h`` entries, only
while Redis says its AOF is on and its last rewrite succeeded, never a name Redis uses or may number
again, and nothing at all of a manifest it cannot read plainly. History never outlives a run:
:func:`clear_history_offline` deletes what is left before Redis starts again.
"""

from __future__ import annotations

import logging
import math
import os
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import redis

from tradewire.ops.files import replace_file

__all__ = [
    "AUTO_GC",
    "LEAST_STEP",
    "MOST_STEP",
    "SPREAD_SECONDS",
    "STEP_PAUSE",
    "SWEEP_EVERY",
    "AofHistorySweeper",
    "History",
    "ManifestEntry",
    "SweepRefused",
    "clear_history_offline",
    "forget_history",
    "history_of",
    "may_sweep",
    "parse_manifest",
    "read_history",
    "shrink",
    "step_for",
]

log = logging.getLogger(__name__)

#: A round's files are freed over about this long, in truncations ``STEP_PAUSE`` apart of at least
#: ``LEAST_STEP`` and at most ``MOST_STEP`` bytes: each step's freeing is a small commit of its own.
#: 4 MB every 10 ms (1.5 GB in 4 s) still slowed the engine's commands for those seconds at
#: 10,000/s under ``always``; 1 MB every 10 ms far less. Steps grow with the history, so that a
#: round takes about this long however much a rewrite replaced; at full throughput (~135 MB/s of
#: AOF, a rewrite every 7-8 s at the most) rounds follow each other, the space freed as they go.
SPREAD_SECONDS: Final = 10.0
STEP_PAUSE: Final = 0.01
LEAST_STEP: Final = 1 << 20
MOST_STEP: Final = 64 << 20
#: Redis 7's setting that keeps replaced AOF files (as history) instead of deleting them.
AUTO_GC: Final = "aof-disable-auto-gc"
#: How often the manifest is looked at: a rewrite comes every tens of seconds at the most.
SWEEP_EVERY: Final = 1.0


@dataclass(frozen=True)
class ManifestEntry:
    """One line of a Redis 7 AOF manifest: ``file NAME seq N type T`` (``b`` base, ``i``
    increment, ``h`` history)."""

    name: str
    seq: int
    kind: str


@dataclass(frozen=True)
class History:
    """What a manifest says of the files a rewrite replaced."""

    files: tuple[Path, ...]
    """The ``type h`` files that may be emptied: plain names in the AOF's directory that Redis
    neither uses nor may use again (see :func:`history_of`)."""
    forgettable: bool
    """Whether Redis may be asked to delete every history file it names (it deletes by name): not
    when one of them is, or may become, live, or is no plain name of this directory."""


def parse_manifest(text: str) -> list[ManifestEntry] | None:
    """The entries of a Redis 7 AOF manifest; None when a line is not in the plain form (a quoted or
    escaped name, say), which this sweeper then leaves alone rather than guess at."""
    entries = []
    for line in text.splitlines():
        if not line.strip():
            continue
        fields = line.split()
        if len(fields) % 2 or any(mark in line for mark in "\"'\\"):
            return None
        entry = _fields(line)
        name, seq, kind = entry.get("file"), entry.get("seq"), entry.get("type")
        if name is None or kind is None or seq is None or not seq.isdigit():
            return None
        entries.append(ManifestEntry(name, int(seq), kind))
    return entries


def history_of(
    entries: list[ManifestEntry], aof_dir: Path, appendfilename: str = "appendonly.aof"
) -> History:
    """The history in ``entries`` of the AOF in ``aof_dir``.

    Redis numbers its next base and increment from the live entries only (``seq`` + 1). After a
    rewrite with ``appendonly`` off every increment is history and the numbering starts again, so a
    history name can be live too, or become live at the next rewrite: such a name is never emptied,
    and Redis is not asked to delete history by name while one is listed."""
    live = [entry for entry in entries if entry.kind != "h"]
    live_names = {entry.name for entry in live}
    newest = {
        "incr": max((entry.seq for entry in live if entry.kind == "i"), default=0),
        "base": max((entry.seq for entry in live if entry.kind == "b"), default=0),
    }
    numbered = re.compile(rf"{re.escape(appendfilename)}\.(\d+)\.(incr|base)\.(?:aof|rdb)")

    def may_come_back(name: str) -> bool:
        match = numbered.fullmatch(name)
        return match is not None and int(match.group(1)) > newest[match.group(2)]

    history = [entry.name for entry in entries if entry.kind == "h"]
    safe = [name for name in history if _plain(name) and name not in live_names and not may_come_back(name)]
    return History(tuple(aof_dir / name for name in safe), forgettable=len(safe) == len(history))


def read_history(aof_dir: Path, appendfilename: str = "appendonly.aof") -> History | None:
    """The history of the AOF in ``aof_dir``; none without a manifest (Redis before 7, or no AOF
    yet); None when the manifest is not in the plain form :func:`parse_manifest` reads."""
    try:
        text = (aof_dir / f"{appendfilename}.manifest").read_text()
    except FileNotFoundError:
        return History((), forgettable=True)
    entries = parse_manifest(text)
    return None if entries is None else history_of(entries, aof_dir, appendfilename)


def clear_history_offline(aof_dir: Path, appendfilename: str = "appendonly.aof") -> bool:
    """Before Redis starts on ``aof_dir``: delete its history files and drop them from the manifest,
    as Redis's own deletion would have. Kept across a restart, history confuses Redis: with no live
    increment it appends to an old increment of the name it picks, whose stale commands a later
    start replays. Whether the AOF is one the sweeper may then look after (no manifest, or one it
    reads plainly); when not, nothing is touched."""
    manifest = aof_dir / f"{appendfilename}.manifest"
    try:
        text = manifest.read_text()
    except FileNotFoundError:
        return True
    entries = parse_manifest(text)
    if entries is None:
        return False
    live_names = {entry.name for entry in entries if entry.kind != "h"}
    history = [entry.name for entry in entries if entry.kind == "h"]
    if not history:
        return True
    for name in history:
        if _plain(name) and name not in live_names:
            (aof_dir / name).unlink(missing_ok=True)
    kept = [line for line in text.splitlines() if line.strip() and _fields(line)["type"] != "h"]
    replace_file(manifest, "".join(f"{line}\n" for line in kept))
    return True


def _plain(name: str) -> bool:
    """Whether ``name`` is a file of the AOF's own directory (a manifest could name any path)."""
    return os.path.basename(name) == name and name not in (".", "..")


def _fields(line: str) -> dict[str, str]:
    fields = line.split()
    return dict(zip(fields[::2], fields[1::2], strict=True))


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


def may_sweep(client: redis.Redis) -> bool:
    """Whether Redis's history may be touched now: its AOF on, no rewrite running, the last one a
    success."""
    info = client.info("persistence")
    return bool(
        info.get("aof_enabled") == 1
        and info.get("aof_rewrite_in_progress") == 0
        and info.get("aof_last_bgrewrite_status") == "ok"
    )


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

    Both happen only while ``may_sweep`` says so (Redis's AOF on, no rewrite running, the last one
    succeeded: a rewrite that failed after renaming its manifest leaves history entries that Redis
    still treats as live). ``forget`` runs only when the manifest still names exactly the files just
    emptied (a rewrite that ended meanwhile made new history, which Redis would delete in one go)."""

    def __init__(
        self,
        aof_dir: Path,
        forget: Callable[[], None],
        may_sweep: Callable[[], bool],
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
        self._may_sweep = may_sweep
        self._name = appendfilename
        self._every = every
        self._spread = spread
        self._pause = pause
        self._least = least
        self._most = most
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._said: str | None = None

    def start(self) -> None:
        """Sweep every ``every`` seconds from now on, in a thread of its own."""
        if self._thread is not None and self._thread.is_alive():
            raise RuntimeError(f"the AOF history sweeper of {self._dir} is already running")
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="aof-history-sweeper", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop sweeping (a file being shrunk stays part-shrunk, still history), waiting at most
        ``timeout`` seconds for a call to Redis in flight."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if not self._thread.is_alive():  # else kept, so that no second one starts beside it
                self._thread = None

    def sweep(self) -> bool:
        """One round: empty every history file, then have Redis forget them; whether it did."""
        history = read_history(self._dir, self._name)
        if history is None:
            raise SweepRefused(f"{self._dir}: a manifest line is not in the plain form this sweeper reads")
        if not history.files or not self._may_sweep():
            return False
        total = sum(_size(path) for path in history.files)
        step = step_for(total, spread=self._spread, pause=self._pause, least=self._least, most=self._most)
        for path in history.files:
            if not shrink(path, self._stopping, step=step, pause=self._pause):
                return False
        if not history.forgettable:
            raise SweepRefused(
                f"{self._dir}: the manifest names a history file that is or may become live (or "
                "is outside the directory); the others emptied, none deleted"
            )
        if read_history(self._dir, self._name) != history or not self._may_sweep():
            return False  # a rewrite ended or began meanwhile: its files are swept next round
        self._forget()
        return True

    def _run(self) -> None:
        while not self._stopping.wait(self._every):
            try:
                swept = self.sweep()
            except Exception as exc:  # a sweep that fails is tried again, never fatal
                self._say(f"sweeping the AOF history failed, tried again every {self._every:.0f} s: {exc}")
            else:
                if swept:
                    self._say(None)

    def _say(self, problem: str | None) -> None:
        """Log a problem once, not every round, and its end."""
        if problem != self._said:
            if problem is not None:
                log.warning(problem)
            elif self._said is not None:
                log.info("sweeping the AOF history in %s works again", self._dir)
        self._said = problem


class SweepRefused(RuntimeError):
    """The manifest is not one this sweeper may act on without risking a file Redis needs."""


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0
