"""``tradewire up``'s handling of a signal that comes while ``asyncio.run`` makes its event loop."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import pytest

from tradewire import up
from tradewire.journal.archive import KEEP_SECONDS


def test_a_signal_taken_while_the_loop_was_made_stops_before_any_child_starts(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Raising from the handler inside the loop's making left a half-made loop (whose ``__del__``
    printed a traceback) and an unfinished stop; the signal is remembered and acted on instead."""
    monkeypatch.setattr(up, "_signalled", [])
    previous = signal.getsignal(signal.SIGTERM)
    try:
        signal.signal(signal.SIGTERM, up._remember)
        signal.raise_signal(signal.SIGTERM)
        engine = up.Child("engine", ["engine"], {})
        gateway = up.Child("gateway", ["gateway"], {})
        archiving = up.Archiving(every=0, keep_seconds=KEEP_SECONDS)
        asyncio.run(
            up._run(
                "redis://127.0.0.1:1", "127.0.0.1", 1, tmp_path, {}, [engine, gateway], False, None, archiving
            )
        )
        assert engine.process is None and gateway.process is None
        assert signal.getsignal(signal.SIGTERM) is up._already_stopping  # not the default: it would kill up
    finally:
        signal.signal(signal.SIGTERM, previous)
