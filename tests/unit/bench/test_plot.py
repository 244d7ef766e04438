"""bench/plot.py and bench/run_all.py's parsing on tiny synthetic results: no bench is run."""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.append(str(Path(__file__).resolve().parents[3] / "bench"))

import plot
import run_all

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

FANOUT_OUTPUT = """\
    publications/s     10  delivered msg/s     19996  all delivered True  drain  0.00s
    publications/s     15  delivered msg/s     29994  all delivered True  drain  0.00s
    publications/s     22  delivered msg/s     30000  all delivered False  drain  5.00s
run 1: {"connections":2000,"batched":false,"burst":1,"messages_per_s":29994}
median of 1: {"messages_per_s":29994.0}
"""


def record() -> dict[str, object]:
    return {
        "kind": plot.KIND,
        "machine": {
            "cpu": "Test CPU",
            "cores": 2,
            "python": "3.11.7",
            "load_average_at_end": [1.5, 1, 1],
            "steadiness": {"steadiness_slowed_share": 0.071, "steadiness_longest_window_ms": 91.0},
        },
        "engine": {
            "commands": 1000,
            "engines": [],
            "latency_us": {"p50": 3.5, "p90": 10.0, "p99": 30.0, "p99.9": 70.0, "max": 1200.0},
        },
        "pipeline_latency": [
            {
                "rate": rate,
                "fsync": "always",
                "result": {
                    "latency": {
                        "runs": [{"p50_ms": p50, "p99_ms": p50 * 3, "max_ms": p50 * 4, "commands": 100}]
                    }
                },
            }
            for rate, p50 in ((200, 2.0), (1000, 20.0))
        ],
        "gateway_latency": [
            {
                "clients": 10,
                "runs": [
                    {
                        "via": "journal",
                        "offered_orders_per_s": 200,
                        "depth_p50_ms": 2.0,
                        "depth_p99_ms": 8.0,
                        "depth_samples": 10,
                        "trade_p50_ms": 3.0,
                        "trade_p99_ms": 7.0,
                    }
                ],
            }
        ],
        "gateway_fanout": [
            {
                "connections": 2000,
                "batched": False,
                "burst": 1,
                "steps": run_all.fanout_steps(FANOUT_OUTPUT, 2000),
            }
        ],
    }


def test_percentiles_with_bench_keys_orders_quantiles_and_keeps_the_maximum_apart() -> None:
    found = plot.percentiles("x", {"p99.9": 70.0, "p50": 3.5, "max": 1200.0, "commands": 9}, "µs")
    assert found == plot.Percentiles("x", "µs", ((50.0, 3.5), (99.9, 70.0)), 1200.0)


def test_percentiles_with_a_prefix_reads_only_that_streams_figures() -> None:
    found = plot.percentiles(
        "t", {"depth_p50_ms": 2.0, "trade_p50_ms": 3.0, "trade_samples": 5}, "ms", "trade_"
    )
    assert found is not None and found.points == ((50.0, 3.0),)


def test_fanout_steps_with_a_sweep_that_stopped_marks_only_the_last_step_incomplete() -> None:
    steps = run_all.fanout_steps(FANOUT_OUTPUT, 2000)
    assert [s["offered_msg_per_s"] for s in steps] == [20000, 30000, 44000]
    assert [s["complete"] for s in steps] == [True, True, False]
    assert run_all.gateway_runs(FANOUT_OUTPUT) == [
        {"connections": 2000, "batched": False, "burst": 1, "messages_per_s": 29994}
    ]


def test_draw_all_with_a_synthetic_record_writes_every_plot_as_png(tmp_path: Path) -> None:
    path = tmp_path / "short.json"
    path.write_text(json.dumps(record()))
    results = plot.load([path])
    assert results.pipeline_rates == [(200.0, 2.0, 6.0), (1000.0, 20.0, 60.0)]
    assert "Test CPU, 2 cores" in results.machine
    assert "cores slowed 7% of the probe's time (longest window 91 ms)" in results.machine
    written = plot.draw_all(results, tmp_path / "png")
    assert sorted(p.name for p in written) == [
        "engine-latency.png", "gateway-fanout.png", "gateway-latency.png",
        "pipeline-latency-vs-rate.png", "pipeline-latency.png",
    ]  # fmt: skip
    for png in written:
        assert png.read_bytes()[:8] == PNG_SIGNATURE


def test_load_with_an_unknown_file_says_which_file(tmp_path: Path) -> None:
    path = tmp_path / "other.json"
    path.write_text("{}")
    try:
        plot.load([path])
    except SystemExit as exit:
        assert str(path) in str(exit)
    else:
        raise AssertionError("an unknown file was accepted")
