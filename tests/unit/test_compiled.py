"""The compiled hot modules: a build older than its source is named, so that it is never tested or run
in the source's place unnoticed."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import sysconfig
from collections.abc import Iterator
from pathlib import Path

import pytest

from tradewire import compiled

BUILD = f"mod{sysconfig.get_config_var('EXT_SUFFIX')}"


@pytest.fixture
def package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A package ``twhot`` with a module ``mod`` as source and as a (fake) build beside it: Python's
    finder takes the build, as it takes a real one."""
    root = tmp_path / "twhot"
    root.mkdir()
    (root / "__init__.py").write_text("")
    (root / "mod.py").write_text("VALUE = 1\n")
    (root / "plain.py").write_text("VALUE = 2\n")
    (root / BUILD).write_bytes(b"")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(compiled, "MODULES", ("twhot.mod", "twhot.plain"))
    importlib.invalidate_caches()
    yield root
    sys.modules.pop("twhot", None)


def _age(path: Path, seconds: float) -> None:
    stamp = path.stat().st_mtime - seconds
    os.utime(path, (stamp, stamp))


def test_a_build_older_than_its_source_is_stale(package: Path) -> None:
    assert compiled.compiled() == ["twhot.mod"]
    _age(package / BUILD, 60)
    assert compiled.stale() == ["twhot.mod"]


def test_a_build_written_just_before_its_source_as_an_installer_writes_them_is_not(package: Path) -> None:
    _age(package / BUILD, 0.2)
    assert compiled.stale() == []


def test_a_build_newer_than_its_source_and_a_module_left_as_source_are_not(package: Path) -> None:
    _age(package / "mod.py", 60)
    _age(package / "plain.py", 60)
    assert compiled.stale() == []


_TRANSACTIONS = """
import hashlib
from tests.unit.journal.test_core import CONFIG, EPOCH, _entries, _lines
from tradewire import compiled
from tradewire.journal.core import Core
from tradewire.journal.wire import pack_commands

core, digest = Core(CONFIG), hashlib.sha256()
entries = _entries(_lines(seed=31, count=3000))
start, size = 0, 1
while start < len(entries):  # batches of 1, 2, 4 ... 512 commands
    batch = entries[start : start + size]
    if start > len(entries) // 2:
        core.accounts.listening(frozenset({"u1", "u2", "alice"}))
    digest.update(pack_commands(core.batch(batch, EPOCH), b"", b""))
    start, size = start + size, min(size * 2, 512)
digest.update(core.to_state())
print(digest.hexdigest(), len(compiled.compiled()))
"""


def test_the_compiled_modules_and_their_sources_give_the_same_transactions_byte_for_byte() -> None:
    """The source is the fallback where nothing is built: it must give what the build gives, every
    byte of every batch's transaction and the state after them (user-data payloads included)."""
    root = Path(__file__).resolve().parents[2]
    runs = []
    for switch in ("1", "0"):
        env = {**os.environ, compiled.SWITCH: switch, "PYTHONPATH": str(root)}
        done = subprocess.run(
            [sys.executable, "-c", _TRANSACTIONS], cwd=root, env=env, capture_output=True, text=True,
            timeout=300,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        runs.append(done.stdout.split())
    (built, built_count), (source, source_count) = runs
    assert built_count == str(len(compiled.MODULES)) and source_count == "0"
    assert built == source
