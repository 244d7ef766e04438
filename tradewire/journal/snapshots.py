"""Snapshots serialised in a forked child, so that writing one never pauses the engine.

Serialising the whole state takes tens of milliseconds (25-75 ms with 12,700 open orders), and the
engine used to do it between two batches: every command that came meanwhile waited, and that one
pause was the journal-to-publish p99.9, and the p99 whenever it ran long. As Redis does for
``BGSAVE``, the engine forks instead, at the end of a batch: the child is a copy-on-write image of
the process at that instant, serialises the state and hands the bytes back through a pipe, while
the parent goes on applying batches. The parent then writes the snapshot, covering the command the
child's image had applied last, in its next transaction, so the write is fenced and checked like any
other; a snapshot written a few batches after the position it covers is as good as one written with
it, since recovery replays the journal from the snapshot's position.

The child keeps nothing of the parent's but the memory it reads and the pipe it writes: it closes
every other descriptor (sockets, the event loop's), ignores the group's SIGTERM and SIGINT, is
killed when the parent dies, runs at the lowest priority (``nice`` 19, in a session and scheduling
group of its own: on a machine whose cores are busy, it takes what the engine, Redis and the
gateways leave) and never logs. It writes ``S``, the state's length and the state, or ``E`` and its
traceback, and ends with ``os._exit`` (no clean-up of the parent's objects, no flush of its
buffers). Only a whole ``S`` frame counts, from a child that exited with status 0 (or whose status
another reaper took: ``SIGCHLD`` ignored).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import signal
import time
import traceback
import zlib
from collections.abc import Callable
from typing import TYPE_CHECKING

from tradewire import keys
from tradewire.ops.children import die_with_parent

if TYPE_CHECKING:
    from tradewire.journal.core import Op

CAN_FORK = hasattr(os, "fork")
SNAPSHOT_EVERY = 1_000_000
"""Commands between two snapshots, unless :data:`SNAPSHOT_EVERY_SECONDS` pass first (at 10,000 commands/s
they do). Each snapshot forks the engine, whose next batches then copy every page they touch (tens
of milliseconds of extra work at ~100 MB of heap, a burst of commands over 5 ms); recovery replays
about this many commands after the newest snapshot (2.7 s for a million here, the recovery floor's
case), more while the next one is being taken."""
SNAPSHOT_EVERY_SECONDS = 60.0
"""Seconds between two snapshots at most, when any command came: an idle or slow exchange still
gets a recent one."""
_READ_SIZE = 1 << 20
_ZLIB = b"\x78"
"""The first byte of a zlib stream (deflate, 32 KiB window); a state's msgpack array never starts so."""


def pack_state(state: bytes) -> bytes:
    """A state as a snapshot stores it: zlib at its fastest level shrinks it about 4x (2.3 MB to
    0.6 MB in 12 ms), so the transaction that writes it holds Redis, and its AOF, a quarter as long."""
    return zlib.compress(state, 1)


def unpack_state(data: bytes) -> bytes:
    """The state in a snapshot's stored bytes; those written before compression are the state."""
    return zlib.decompress(data) if data[:1] == _ZLIB else data


class SnapshotFailed(Exception):
    """The child handed over no whole state: its traceback (``bug``: the state could not be
    serialised), or how it ended (killed, stopped for taking too long)."""

    def __init__(self, message: str, *, bug: bool = False) -> None:
        super().__init__(message)
        self.bug = bug


def snapshot_ops(pos: bytes, at: int, state: bytes) -> list[Op]:
    """The ``HSET`` of ``tw:{0}:snapshot``: ``state`` covers the commands up to ``pos``, the last of
    them at exchange time ``at``."""
    return [(b"HSET", keys.SNAPSHOT, b"pos", pos, b"at", at, b"state", state)]


_UNKNOWN = -1000
"""The exit status of a child that another part of the process reaped (or ``SIGCHLD`` ignored)."""


class ForkedSnapshot:
    """One snapshot being serialised by a child process; poll :meth:`done`, then :meth:`ops`.

    The child writes ``S``, the state's length (8 bytes) and the state, or ``E`` and its traceback:
    a whole ``S`` frame is the proof, the exit status (when it can be read) a second one."""

    def __init__(self, pid: int, fd: int, pos: bytes, at: int, loop: asyncio.AbstractEventLoop) -> None:
        self.pos = pos
        self.at = at
        self.started = time.monotonic()
        self.seconds = 0.0
        """From the fork to the last byte read, once done."""
        self._pid = pid
        self._fd = fd
        self._loop = loop
        self._chunks: list[bytes] = []
        self._status: int | None = None
        loop.add_reader(fd, self._readable)

    @classmethod
    def fork(
        cls, serialise: Callable[[], bytes], pos: bytes, at: int, loop: asyncio.AbstractEventLoop
    ) -> ForkedSnapshot:
        """Fork a child that writes ``serialise()``; the parent returns at once. Raises ``OSError``
        when the process cannot fork (out of memory or processes), having left nothing open."""
        arm = die_with_parent(signal.SIGKILL)
        read_end, write_end = os.pipe()
        try:
            pid = os.fork()
        except OSError:
            os.close(read_end)
            os.close(write_end)
            raise
        if pid == 0:  # pragma: no cover - the child ends in os._exit, which coverage never sees
            _child(serialise, write_end, arm)
        os.close(write_end)
        try:
            os.set_blocking(read_end, False)
            return cls(pid, read_end, pos, at, loop)
        except BaseException:
            os.close(read_end)
            _stop(pid)
            raise

    def done(self) -> bool:
        return self._status is not None

    def ops(self) -> list[Op]:
        """The snapshot's write, once :meth:`done`; raises :class:`SnapshotFailed` if the child
        did not hand over a whole state."""
        assert self._status is not None, "the child is still serialising"
        data = b"".join(self._chunks)
        self._chunks = []
        status = self._status
        if data[:1] == b"S" and status in (0, _UNKNOWN) and len(data) >= 9:
            length = int.from_bytes(data[1:9], "big")
            if len(data) == 9 + length:
                return snapshot_ops(self.pos, self.at, data[9:])
        if data[:1] == b"E" and status == 1:
            raise SnapshotFailed(data[1:].decode("utf-8", "replace"), bug=True)
        how = f"killed by signal {-status}" if _UNKNOWN < status < 0 else f"ended with status {status}"
        raise SnapshotFailed(f"the snapshot's child process {how} before handing over the state")

    def cancel(self) -> None:
        """Stop the child (its state is no longer wanted) and reap it."""
        if self._status is not None:
            return
        self._close()
        self._status = _stop(self._pid)
        self._chunks = []

    def _close(self) -> None:
        if self._fd >= 0:
            self._loop.remove_reader(self._fd)
            os.close(self._fd)
            self._fd = -1

    def _readable(self) -> None:
        try:
            chunk = os.read(self._fd, _READ_SIZE)
        except BlockingIOError:
            return
        if chunk:
            self._chunks.append(chunk)
            return
        self.seconds = time.monotonic() - self.started
        try:
            self._close()
        finally:
            self._status = _reap(self._pid)  # the pipe closes as the child exits: no wait to speak of


def _reap(pid: int) -> int:
    try:
        _, status = os.waitpid(pid, 0)
    except ChildProcessError:  # reaped elsewhere, or SIGCHLD ignored: the frame alone must prove it
        return _UNKNOWN
    return os.waitstatus_to_exitcode(status)


def _stop(pid: int) -> int:
    """Kill a child not yet reaped (its pid cannot have been reused) and reap it."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    return _reap(pid)


def _lowest_priority() -> None:  # pragma: no cover - runs in the child
    """Nice 19, in a scheduling group of its own: with autogroups (most desktops and many servers)
    nice ranks a process only against its own session, and ``tradewire up`` starts Redis and the
    gateways in sessions of their own, so the child must leave the engine's session, and give the
    new session's group the lowest weight, to come after them too. (A cgroup CPU controller, as
    systemd and containers set, weighs groups by its own settings: none of this reaches past it.)"""
    with contextlib.suppress(OSError):
        os.setsid()  # first: until then the autogroup is the engine's too, and must keep its weight
        with open("/proc/self/autogroup", "w") as group:
            group.write("19")
    with contextlib.suppress(OSError):
        os.setpriority(os.PRIO_PROCESS, 0, 19)


def _child(
    serialise: Callable[[], bytes], write_end: int, arm: Callable[[], None] | None
) -> None:  # pragma: no cover
    """The child: nothing of the parent's but the memory it reads and the pipe it writes."""
    status = 1
    try:
        os.closerange(0, write_end)  # the parent's sockets, listeners and loop: not the child's to hold
        os.closerange(write_end + 1, os.sysconf("SC_OPEN_MAX"))
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, signal.SIG_IGN)  # a group's stop is for the parent, which ends it
        with contextlib.suppress(ValueError):
            signal.set_wakeup_fd(-1)
        if arm is not None:
            arm()  # and the parent's death ends the child (SIGKILL)
        with contextlib.suppress(OSError), open("/proc/self/oom_score_adj", "w") as adj:
            adj.write("1000")  # under memory pressure, the child goes first (as Redis's BGSAVE child)
        _lowest_priority()
        gc.disable()  # a collection would walk, and so copy, the whole heap the parent shares
        try:
            state = serialise()
            frame = b"S" + len(state).to_bytes(8, "big") + state
        except BaseException:
            frame = b"E" + traceback.format_exc().encode()
        else:
            status = 0
        view = memoryview(frame)
        while view:
            view = view[os.write(write_end, view) :]
    except BaseException:
        status = 1
    finally:
        os._exit(status)
