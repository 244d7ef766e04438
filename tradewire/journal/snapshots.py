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

The child touches nothing it shares with the parent: no Redis connection, no event loop, no log. It
writes ``S`` and the state, or ``E`` and its traceback, and ends with ``os._exit`` (no clean-up of
the parent's objects, no flush of its buffers). Only a child that exited with status 0 after a
complete ``S`` frame counts; a parent killed meanwhile takes its pipe with it, and the child's next
write fails and ends it.
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

if TYPE_CHECKING:
    from tradewire.journal.core import Op

CAN_FORK = hasattr(os, "fork")
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
    """The child could not serialise the state: its traceback, or how it ended."""


def snapshot_ops(pos: bytes, at: int, state: bytes) -> list[Op]:
    """The ``HSET`` of ``tw:{0}:snapshot``: ``state`` covers the commands up to ``pos``, the last of
    them at exchange time ``at``."""
    return [(b"HSET", keys.SNAPSHOT, b"pos", pos, b"at", at, b"state", state)]


class ForkedSnapshot:
    """One snapshot being serialised by a child process; poll :meth:`done`, then :meth:`ops`."""

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
        """Fork a child that writes ``serialise()``; the parent returns at once."""
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child ends in os._exit, which coverage never sees
            _child(serialise, read_end, write_end)
        os.close(write_end)
        os.set_blocking(read_end, False)
        return cls(pid, read_end, pos, at, loop)

    def done(self) -> bool:
        return self._status is not None

    def ops(self) -> list[Op]:
        """The snapshot's write, once :meth:`done`; raises :class:`SnapshotFailed` if the child
        did not hand over a whole state."""
        assert self._status is not None, "the child is still serialising"
        data = b"".join(self._chunks)
        self._chunks = []
        if self._status == 0 and data[:1] == b"S":
            return snapshot_ops(self.pos, self.at, data[1:])
        if data[:1] == b"E":
            raise SnapshotFailed(data[1:].decode("utf-8", "replace"))
        raise SnapshotFailed(f"the snapshot's child process ended with status {self._status}")

    def cancel(self) -> None:
        """Stop the child (its state is no longer wanted) and reap it."""
        if self._status is not None:
            return
        self._loop.remove_reader(self._fd)
        os.close(self._fd)
        with contextlib.suppress(ProcessLookupError):
            os.kill(self._pid, signal.SIGKILL)
        self._status = _reap(self._pid)
        self._chunks = []

    def _readable(self) -> None:
        try:
            chunk = os.read(self._fd, _READ_SIZE)
        except BlockingIOError:
            return
        if chunk:
            self._chunks.append(chunk)
            return
        self._loop.remove_reader(self._fd)
        os.close(self._fd)
        self.seconds = time.monotonic() - self.started
        self._status = _reap(self._pid)  # the pipe closes as the child exits: no wait to speak of


def _reap(pid: int) -> int:
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def _child(serialise: Callable[[], bytes], read_end: int, write_end: int) -> None:  # pragma: no cover
    status = 1
    try:
        os.close(read_end)
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, signal.SIG_DFL)  # not the parent's handlers (its loop's wake-up pipe)
        gc.disable()  # a collection would walk, and so copy, the whole heap the parent shares
        try:
            frame = b"S" + serialise()
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
