"""Collections are timed into the GC pause histogram, once per collection, by generation."""

from __future__ import annotations

import gc

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
    full, young = _count("2"), _count("0")
    gc.collect(2)
    gc.collect(2)
    assert _count("2") == full + 2
    assert _count("0") == young, "an explicit full collection is not a young one"
