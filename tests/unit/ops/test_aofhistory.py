"""The AOF history sweeper's pieces without Redis: which files a manifest marks as history, and
shrinking a file in steps that a stop interrupts."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from tradewire.ops import aofhistory
from tradewire.ops.aofhistory import AofHistorySweeper, history_files, shrink, step_for

MANIFEST = """\
file appendonly.aof.3.base.rdb seq 3 type b
file appendonly.aof.2.incr.aof seq 2 type h
file "appendonly aof.2.base.rdb" seq 2 type h
file ../outside seq 1 type h
file sub/dir seq 1 type h
file appendonly.aof.3.incr.aof seq 3 type i
"""


def test_history_files_are_the_manifests_type_h_entries_inside_the_directory(tmp_path: Path) -> None:
    (tmp_path / "appendonly.aof.manifest").write_text(MANIFEST)
    assert history_files(tmp_path) == [
        tmp_path / "appendonly.aof.2.incr.aof",
        tmp_path / "appendonly aof.2.base.rdb",
    ]


def test_no_manifest_means_no_history(tmp_path: Path) -> None:
    assert history_files(tmp_path) == []
    assert history_files(tmp_path / "absent") == []


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


def test_a_sweep_empties_the_history_then_has_redis_forget_it(tmp_path: Path) -> None:
    (tmp_path / "appendonly.aof.manifest").write_text("file a.base seq 1 type h\nfile b.base seq 2 type b\n")
    (tmp_path / "a.base").write_bytes(b"a" * 100)
    (tmp_path / "b.base").write_bytes(b"b" * 100)
    forgotten: list[list[Path]] = []
    sweeper = AofHistorySweeper(
        tmp_path, lambda: forgotten.append(history_files(tmp_path)), least=30, most=30, pause=0
    )

    assert sweeper.sweep()
    assert (tmp_path / "a.base").stat().st_size == 0
    assert (tmp_path / "b.base").stat().st_size == 100  # the live base is never touched
    assert forgotten == [[tmp_path / "a.base"]]


def test_history_that_a_rewrite_made_during_the_sweep_is_not_forgotten_unswept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    manifest = tmp_path / "appendonly.aof.manifest"
    manifest.write_text("file a.base seq 1 type h\nfile b.base seq 2 type b\n")
    (tmp_path / "a.base").write_bytes(b"a" * 100)
    (tmp_path / "b.base").write_bytes(b"b" * 100)

    def shrink_while_a_rewrite_ends(path: Path, stopping: threading.Event, **_: object) -> bool:
        done = shrink(path, stopping, step=30, pause=0)
        manifest.write_text("file a.base seq 1 type h\nfile b.base seq 2 type h\nfile c.base seq 3 type b\n")
        return done

    monkeypatch.setattr(aofhistory, "shrink", shrink_while_a_rewrite_ends)
    forgotten: list[bool] = []
    assert not AofHistorySweeper(tmp_path, lambda: forgotten.append(True)).sweep()
    assert forgotten == []  # Redis would have deleted b.base, still full, at once
    assert (tmp_path / "b.base").stat().st_size == 100


def test_a_round_is_spread_over_the_spread_in_steps_within_their_bounds() -> None:
    mib = 1 << 20
    assert step_for(1500 * mib, spread=10, pause=0.01, least=mib, most=64 * mib) == 1.5 * mib
    assert step_for(10 * mib, spread=10, pause=0.01, least=mib, most=64 * mib) == mib
    assert step_for(100_000 * mib, spread=10, pause=0.01, least=mib, most=64 * mib) == 64 * mib
    assert step_for(5, spread=0, least=1, most=7) == 7
