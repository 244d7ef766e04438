"""Collections are timed into the GC pause histogram, once per collection, by generation."""

from __future__ import annotations

import gc
import subprocess
import sys

from tradewire.ops.metrics import GC_PAUSE_SECONDS, observe_gc_pauses


def _count(generation: str) -> float:
    for metric in GC_PAUSE_SECONDS.collect():
        for sample in metric.samples:
            if sample.name.endswith("_count") and sample.labels == {"generation": generation}:
                return sample.value
    return 0.0


def test_each_collection_is_timed_once_under_its_generation() -> None:
    observe_gc_pauses()
    observe_gc_pauses()  # installing twice must not count twice
    gc.disable()  # no automatic collection in between: only the two below
    try:
        full, young = _count("2"), _count("0")
        gc.collect(2)
        gc.collect(2)
        assert _count("2") == full + 2
        assert _count("0") == young, "an explicit full collection is not a young one"
    finally:
        gc.enable()


def test_a_collection_during_a_scrape_does_not_wait_for_the_scrapes_lock() -> None:
    """A scrape holds the histogram's lock while it copies a dict; a collection that the copy starts
    runs the callback on the same thread, which must not take that lock (it would wait forever)."""
    script = (
        "import gc\n"
        "from tradewire.ops.metrics import GC_PAUSE_SECONDS, observe_gc_pauses\n"
        "observe_gc_pauses()\n"
        "with GC_PAUSE_SECONDS._lock:\n"  # what the scrape holds
        "    gc.collect(0)\n"
        "print('done')\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "done", result.stderr
