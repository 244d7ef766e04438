"""The compiled hot modules: a build older than its source is named, so that it is never tested or run
in the source's place unnoticed."""

from __future__ import annotations

import importlib
import os
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


def test_a_build_newer_than_its_source_and_a_module_left_as_source_are_not(package: Path) -> None:
    _age(package / "mod.py", 60)
    _age(package / "plain.py", 60)
    assert compiled.stale() == []
