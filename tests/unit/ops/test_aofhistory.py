"""The AOF history sweeper without Redis: which files a manifest lets it empty, shrinking a file in
steps that a stop interrupts, and when it may ask Redis to forget them."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import pytest

from tradewire.ops import aofhistory
from tradewire.ops.aofhistory import (
    AofHistorySweeper,
    History,
    ManifestEntry,
    SweepRefused,
    clear_history_offline,
    history_of,
    parse_manifest,
    read_history,
    shrink,
    step_for,
)

MANIFEST = """\
file appendonly.aof.3.base.rdb seq 3 type b
file appendonly.aof.2.incr.aof seq 2 type h
file appendonly.aof.2.base.rdb seq 2 type h
file appendonly.aof.3.incr.aof seq 3 type i
"""


def test_a_manifest_is_read_as_names_numbers_and_types_and_anything_unusual_is_not_read_at_all() -> None:
    assert parse_manifest(MANIFEST) == [
        ManifestEntry("appendonly.aof.3.base.rdb", 3, "b"),
        ManifestEntry("appendonly.aof.2.incr.aof", 2, "h"),
        ManifestEntry("appendonly.aof.2.base.rdb", 2, "h"),
        ManifestEntry("appendonly.aof.3.incr.aof", 3, "i"),
    ]
    assert parse_manifest("") == []
    for unusual in (
        'file "appendonly aof.2.base.rdb" seq 2 type h',  # quoted by Redis: a space in the name
        "file it's.aof seq 2 type h",  # written unquoted by Redis, not splittable by shlex
        "file a\\x41.aof seq 2 type h",
        "file a.aof seq 2 type",
        "file a.aof seq two type h",
        "seq 2 type h",
    ):
        assert parse_manifest(MANIFEST + unusual + "\n") is None, unusual


def entries(*lines: tuple[str, int, str]) -> list[ManifestEntry]:
    return [ManifestEntry(*line) for line in lines]


def test_history_is_the_type_h_files_that_are_plain_names_of_this_directory_and_not_also_live() -> None:
    here = Path("/aof")
    normal = entries(("a.base", 3, "b"), ("old.base", 2, "h"), ("old.incr", 2, "h"), ("a.incr", 3, "i"))
    assert history_of(normal, here) == History((here / "old.base", here / "old.incr"), forgettable=True)
    for odd in ("../outside", "sub/dir", ".", "..", "a.incr"):
        history = history_of([*normal, ManifestEntry(odd, 1, "h")], here)
        assert history == History((here / "old.base", here / "old.incr"), forgettable=False), odd


def test_a_history_name_that_redis_numbers_again_is_never_touched() -> None:
    # After a rewrite with appendonly off, a restart and a rewrite: Redis numbers increments from
    # the live ones only, so its next increment is appendonly.aof.2.incr.aof again.
    here = Path("/aof")
    after = entries(
        ("appendonly.aof.3.base.rdb", 3, "b"),
        ("appendonly.aof.2.incr.aof", 2, "h"),
        ("appendonly.aof.2.base.rdb", 2, "h"),
        ("appendonly.aof.1.incr.aof", 1, "i"),
    )
    assert history_of(after, here) == History((here / "appendonly.aof.2.base.rdb",), forgettable=False)
    a_base_ahead = entries(("appendonly.aof.2.base.rdb", 2, "b"), ("appendonly.aof.3.base.rdb", 3, "h"))
    assert history_of(a_base_ahead, here) == History((), forgettable=False)
    other_name = entries(("journal.aof.1.incr.aof", 1, "i"), ("appendonly.aof.5.incr.aof", 5, "h"))
    assert history_of(other_name, here, "journal.aof").forgettable


def test_no_manifest_is_no_history_and_an_unusual_one_is_none(tmp_path: Path) -> None:
    assert read_history(tmp_path) == History((), forgettable=True)
    (tmp_path / "appendonly.aof.manifest").write_text(MANIFEST)
    assert read_history(tmp_path) == History(
        (tmp_path / "appendonly.aof.2.incr.aof", tmp_path / "appendonly.aof.2.base.rdb"), forgettable=True
    )
    (tmp_path / "appendonly.aof.manifest").write_text('file "a b" seq 1 type h\n')
    assert read_history(tmp_path) is None


def test_shrink_empties_a_file_and_a_stop_leaves_it_part_shrunk(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"x" * 35)
    assert shrink(path, threading.Event(), step=10, pause=0)
    assert path.stat().st_size == 0
    assert shrink(tmp_path / "gone", threading.Event(), step=10)

    path.write_bytes(b"x" * 35)
    stopping = threading.Event()
    stopping.set()
    assert not shrink(path, stopping, step=10, pause=0)
    assert path.stat().st_size == 25


def test_a_round_is_spread_over_the_spread_in_steps_within_their_bounds() -> None:
    mib = 1 << 20
    assert step_for(1500 * mib, spread=10, pause=0.01, least=mib, most=64 * mib) == 1.5 * mib
    assert step_for(10 * mib, spread=10, pause=0.01, least=mib, most=64 * mib) == mib
    assert step_for(100_000 * mib, spread=10, pause=0.01, least=mib, most=64 * mib) == 64 * mib
    assert step_for(5, spread=0, least=1, most=7) == 7


def aof(tmp_path: Path, manifest: str, **files: int) -> None:
    (tmp_path / "appendonly.aof.manifest").write_text(manifest)
    for name, size in files.items():
        (tmp_path / name.replace("_", ".")).write_bytes(b"x" * size)


def sweeper(tmp_path: Path, forgotten: list[bool], may: list[bool] | None = None) -> AofHistorySweeper:
    """A sweeper of ``tmp_path`` in 30-byte steps that notes each forget and is allowed to sweep
    as long as ``may`` holds ``True`` values (each call takes one)."""
    allowed = may if may is not None else [True] * 10
    return AofHistorySweeper(
        tmp_path, lambda: forgotten.append(True), lambda: allowed.pop(0), least=30, most=30, pause=0
    )


def test_a_sweep_empties_the_history_then_has_redis_forget_it(tmp_path: Path) -> None:
    aof(tmp_path, "file a.base seq 1 type h\nfile b.base seq 2 type b\n", a_base=100, b_base=100)
    forgotten: list[bool] = []
    assert sweeper(tmp_path, forgotten).sweep()
    assert (tmp_path / "a.base").stat().st_size == 0
    assert (tmp_path / "b.base").stat().st_size == 100  # the live base is never touched
    assert forgotten == [True]


def test_a_history_name_that_is_also_live_is_neither_emptied_nor_forgotten(tmp_path: Path) -> None:
    # After a rewrite with appendonly off and a restart, Redis numbers its new increment from the
    # live entries only: the old increment's name comes back, live, beside its history entry.
    aof(
        tmp_path,
        "file a.base seq 2 type b\nfile a.incr seq 1 type h\n"
        "file old.base seq 1 type h\nfile a.incr seq 1 type i\n",
        a_base=100,
        a_incr=100,
        old_base=100,
    )
    forgotten: list[bool] = []
    with pytest.raises(SweepRefused, match="may become live"):
        sweeper(tmp_path, forgotten).sweep()
    assert (tmp_path / "a.incr").stat().st_size == 100
    assert (tmp_path / "old.base").stat().st_size == 0
    assert forgotten == []  # Redis deletes by name: the live increment would go with it


def test_nothing_is_touched_while_redis_says_not_now_nor_forgotten_if_it_says_so_before_the_forget(
    tmp_path: Path,
) -> None:
    aof(tmp_path, "file a.base seq 1 type h\nfile b.base seq 2 type b\n", a_base=100, b_base=100)
    forgotten: list[bool] = []
    assert not sweeper(tmp_path, forgotten, may=[False]).sweep()
    assert (tmp_path / "a.base").stat().st_size == 100

    assert not sweeper(tmp_path, forgotten, may=[True, False]).sweep()
    assert (tmp_path / "a.base").stat().st_size == 0
    assert forgotten == []


def test_history_that_a_rewrite_made_during_the_sweep_is_not_forgotten_unswept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    aof(tmp_path, "file a.base seq 1 type h\nfile b.base seq 2 type b\n", a_base=100, b_base=100)

    def shrink_while_a_rewrite_ends(path: Path, stopping: threading.Event, **_: object) -> bool:
        done = shrink(path, stopping, step=30, pause=0)
        (tmp_path / "appendonly.aof.manifest").write_text(
            "file a.base seq 1 type h\nfile b.base seq 2 type h\nfile c.base seq 3 type b\n"
        )
        return done

    monkeypatch.setattr(aofhistory, "shrink", shrink_while_a_rewrite_ends)
    forgotten: list[bool] = []
    assert not sweeper(tmp_path, forgotten).sweep()
    assert forgotten == []  # Redis would have deleted b.base, still full, at once
    assert (tmp_path / "b.base").stat().st_size == 100


def test_the_thread_sweeps_until_stopped_says_a_failure_once_and_starts_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "appendonly.aof.manifest").write_text('file "a b" seq 1 type h\n')
    forgotten: list[bool] = []
    running = AofHistorySweeper(tmp_path, lambda: forgotten.append(True), lambda: True, every=0.01)
    with caplog.at_level(logging.WARNING, logger=aofhistory.__name__):
        running.start()
        with pytest.raises(RuntimeError, match="already running"):
            running.start()
        time.sleep(0.2)  # about 20 rounds, every one failing the same way
        running.stop()
    assert len(caplog.records) == 1
    assert "plain form" in caplog.records[0].getMessage()

    aof(tmp_path, "file a.base seq 1 type h\n", a_base=100)
    running.start()
    deadline = time.monotonic() + 10
    while not forgotten and time.monotonic() < deadline:
        time.sleep(0.01)
    running.stop()
    assert forgotten and (tmp_path / "a.base").stat().st_size == 0


def test_history_is_cleared_before_redis_starts_and_nothing_of_an_unusual_manifest(tmp_path: Path) -> None:
    assert clear_history_offline(tmp_path)  # no AOF yet
    aof(
        tmp_path,
        "file a.base seq 2 type b\nfile old.base seq 1 type h\nfile a.incr seq 1 type h\n"
        "file a.incr seq 1 type i\n",
        a_base=10,
        old_base=10,
        a_incr=10,
    )
    assert clear_history_offline(tmp_path)
    assert (
        tmp_path / "appendonly.aof.manifest"
    ).read_text() == "file a.base seq 2 type b\nfile a.incr seq 1 type i\n"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["a.base", "a.incr", "appendonly.aof.manifest"]

    unusual = 'file "a b" seq 1 type h\nfile a.base seq 2 type b\n'
    aof(tmp_path, unusual, a_b=10)
    assert not clear_history_offline(tmp_path)
    assert (tmp_path / "appendonly.aof.manifest").read_text() == unusual
