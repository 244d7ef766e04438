"""Snapshots serialised by a forked child: the bytes come back whole, or the failure says why."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.unit.journal.test_core import CONFIG, EPOCH, _entries, _lines
from tradewire import keys
from tradewire.journal.core import Core
from tradewire.journal.snapshots import ForkedSnapshot, SnapshotFailed, pack_state, unpack_state

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="forked snapshots need os.fork")


async def _finished(child: ForkedSnapshot, timeout: float = 20.0) -> ForkedSnapshot:
    deadline = time.monotonic() + timeout
    while not child.done():
        assert time.monotonic() < deadline, "the child never finished"
        await asyncio.sleep(0.005)
    return child


def _fork(serialise: Callable[[], bytes], pos: bytes = b"7-1", at: int = 7) -> ForkedSnapshot:
    return ForkedSnapshot.fork(serialise, pos, at, asyncio.get_running_loop())


@pytest.mark.asyncio
async def test_a_core_serialised_in_a_child_restores_to_the_state_it_had_at_the_fork() -> None:
    """The child is an image of the process at the fork: what the parent applies afterwards is not
    in the bytes, and they restore the core exactly as it was then."""
    core = Core(CONFIG)
    lines = _lines(seed=5, count=600)
    core.batch(_entries(lines[:400]), EPOCH)
    expected, at = core.to_state(), core.ts
    child = _fork(core.snapshot_state, pos=b"400-0", at=at)
    core.batch(_entries(lines[400:], first=401), EPOCH)  # the parent goes on meanwhile
    assert core.to_state() != expected
    (op,) = (await _finished(child)).ops()
    assert op[:7] == (b"HSET", keys.SNAPSHOT, b"pos", b"400-0", b"at", at, b"state")
    state = op[7]
    assert isinstance(state, bytes) and len(state) < len(expected) / 2, "stored compressed"
    assert Core.from_state(CONFIG, state).to_state() == expected
    assert child.seconds > 0


@pytest.mark.asyncio
async def test_the_child_serialises_at_the_lowest_priority_in_a_session_of_its_own() -> None:
    """On a busy machine the child takes only what the engine, Redis and the gateways leave of the
    cores: nice 19 whatever the engine's, and out of the engine's session (with autogroups, nice
    ranks a process only within its session's group)."""
    before = os.getpriority(os.PRIO_PROCESS, 0)

    def where() -> bytes:
        return b"%d %d %d" % (os.getpriority(os.PRIO_PROCESS, 0), os.getsid(0), os.getpid())

    child = await _finished(_fork(where))
    (op,) = child.ops()
    priority, session, pid = map(int, op[7].split())
    assert priority == 19
    assert session == pid != os.getsid(0)
    assert os.getpriority(os.PRIO_PROCESS, 0) == before


@pytest.mark.asyncio
async def test_a_child_whose_serialisation_raises_hands_back_its_traceback() -> None:
    def broken() -> bytes:
        raise RuntimeError("a value the state format cannot hold")

    child = await _finished(_fork(broken))
    with pytest.raises(SnapshotFailed, match="RuntimeError: a value the state format cannot hold") as failed:
        child.ops()
    assert failed.value.bug


@pytest.mark.asyncio
async def test_a_child_killed_half_way_hands_back_nothing() -> None:
    """A child that did not exit cleanly counts for nothing: a partial state is never written."""

    def killed_half_way() -> bytes:
        os.kill(os.getpid(), signal.SIGKILL)  # runs in the child only
        return b"never"

    child = await _finished(_fork(killed_half_way))
    with pytest.raises(SnapshotFailed, match=f"killed by signal {int(signal.SIGKILL)}") as failed:
        child.ops()
    assert not failed.value.bug


@pytest.mark.asyncio
async def test_a_cancelled_child_is_stopped_and_reaped() -> None:
    def slow() -> bytes:
        time.sleep(60)
        return b"too late"

    child = _fork(slow)
    pid = child._pid
    child.cancel()
    assert child.done()
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # reaped: no zombie left behind
    with pytest.raises(SnapshotFailed, match=f"killed by signal {int(signal.SIGKILL)}") as failed:
        child.ops()
    assert not failed.value.bug


def test_snapshots_written_before_compression_still_load() -> None:
    core = Core(CONFIG)
    core.batch(_entries(_lines(seed=6, count=200)), EPOCH)
    raw = core.to_state()
    assert unpack_state(raw) == raw
    assert unpack_state(pack_state(raw)) == raw
    assert Core.from_state(CONFIG, raw).to_state() == raw
    assert Core.from_state(CONFIG, core.snapshot_state()).to_state() == raw


def test_damaged_compressed_snapshots_are_refused_as_snapshot_errors() -> None:
    core = Core(CONFIG)
    core.batch(_entries(_lines(seed=7, count=100)), EPOCH)
    stored = core.snapshot_state()
    with pytest.raises(ValueError, match="not a service snapshot"):
        Core.from_state(CONFIG, stored[: len(stored) // 2])


def _open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


@pytest.mark.asyncio
async def test_a_fork_that_fails_leaves_no_descriptor_open(monkeypatch: pytest.MonkeyPatch) -> None:
    """Out of memory or processes, every snapshot falls back to the engine: a pipe left open per
    attempt would use up the process's descriptors in hours."""

    def refuse() -> int:
        raise BlockingIOError(11, "Resource temporarily unavailable")

    before = _open_fds()
    monkeypatch.setattr(os, "fork", refuse)
    for _ in range(5):
        with pytest.raises(OSError):
            _fork(lambda: b"never")
    assert _open_fds() == before


@pytest.mark.asyncio
async def test_a_whole_state_counts_even_when_the_childs_status_cannot_be_read() -> None:
    """With SIGCHLD ignored (inherited from whoever started the engine) the kernel reaps children
    itself: the status is lost, and the frame alone must prove the state whole."""
    previous = signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    try:
        child = await _finished(_fork(lambda: b"state", pos=b"9-0", at=9))
    finally:
        signal.signal(signal.SIGCHLD, previous)
    assert child.ops() == [(b"HSET", keys.SNAPSHOT, b"pos", b"9-0", b"at", 9, b"state", b"state")]


@pytest.mark.asyncio
async def test_the_child_holds_none_of_the_parents_descriptors(tmp_path: Path) -> None:
    """A child still running when the engine dies must not keep its sockets (the metrics port would
    stay taken for the engine's restart)."""
    marker = tmp_path / "fds"

    def report() -> bytes:
        marker.write_text(" ".join(sorted(os.listdir("/proc/self/fd"))))
        return b"x"

    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        child = await _finished(_fork(report))
        assert str(held.fileno()) in _open_fds()
    child.ops()
    # the pipe's write end, and what listing the directory opened: nothing else
    assert len(marker.read_text().split()) <= 2
