"""The Prometheus metrics every tradewire process exposes, declared once so that names never drift.

Alert rules (``deploy/prometheus/``) and the Grafana dashboard refer to these names; a process
registers only what it uses (metrics are module-level objects of the default registry) and serves
them at ``/metrics``. Label values are small closed sets (outcome, reason, stream kind), never user
names or order ids.
"""

from __future__ import annotations

import gc
import time
from typing import Any

from prometheus_client import Counter, Gauge, Histogram

_FAST = (0.00001, 0.00002, 0.00005, 0.0001, 0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.05, 0.1)
_SLOW = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

# -- every process ------------------------------------------------------------------------------
GC_PAUSE_SECONDS = Histogram(
    "tradewire_gc_pause_seconds",
    "Time the process stood still in one cyclic garbage collection, by generation collected.",
    ["generation"],
    buckets=(0.0001, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0),
)
_GC_PAUSES = tuple(GC_PAUSE_SECONDS.labels(str(generation)) for generation in range(3))
"""Bound in advance: ``labels()`` takes the histogram's lock, which a scrape holds while it copies a
dict, and a collection that this copy started would run the callback on the same thread and wait
for that lock forever (with the collector marked busy, so no collection would ever run again)."""
_gc_started = 0.0


def _on_gc(phase: str, info: dict[str, Any]) -> None:
    global _gc_started
    if phase == "start":
        _gc_started = time.perf_counter()
    else:
        _GC_PAUSES[info["generation"]].observe(time.perf_counter() - _gc_started)


def observe_gc_pauses() -> None:
    """Time every collection of this process into ``tradewire_gc_pause_seconds`` (idempotent).

    A full collection of a big heap stops the event loop for tens of milliseconds: every update in
    flight waits for it, so its pauses belong next to the latencies they explain."""
    if _on_gc not in gc.callbacks:
        gc.callbacks.append(_on_gc)


# -- engine -------------------------------------------------------------------------------------
ENGINE_APPLY_SECONDS = Histogram(
    "tradewire_engine_apply_seconds", "Time the pure engine takes to apply one command.", buckets=_FAST
)
JOURNAL_APPEND_SECONDS = Histogram(
    "tradewire_journal_append_seconds",
    "Time of one batch's MULTI/EXEC of events, views and progress marker.",
    buckets=_SLOW,
)
COMMANDS = Counter(
    "tradewire_commands_total", "Commands applied, by outcome and reason.", ["outcome", "reason"]
)
TRADES = Counter("tradewire_trades_total", "Trades executed.", ["market"])
JOURNAL_LAG = Gauge("tradewire_journal_lag_entries", "Journal entries appended but not yet applied.")
SNAPSHOT_AGE = Gauge("tradewire_snapshot_age_seconds", "Seconds since the engine last wrote a snapshot.")
SNAPSHOT_SECONDS = Histogram(
    "tradewire_snapshot_seconds",
    "Time to serialise one snapshot: in the forked child, from the fork to its last byte read.",
    buckets=_SLOW,
)
ENGINE_NATIVE = Gauge(
    "tradewire_engine_native",
    "1 while the engine applies commands in its native core, 0 while the pure engine does (the core "
    "is not built, TRADEWIRE_ENGINE=pure, or a value went beyond its bounds: the same events, slower).",
)
ENGINE_LEASE_HELD = Gauge(
    "tradewire_engine_lease_held",
    "1 while this engine holds the engine lease (it applies commands), 0 while it stands by.",
)
ENGINE_STANDBY = Gauge(
    "tradewire_engine_standby",
    "1 while this engine stands by because another engine holds the lease (Redis said so), else 0: "
    "an engine that cannot reach Redis does not know, and says 0.",
)
ENGINE_LEASE_LOST = Counter(
    "tradewire_engine_lease_lost_total",
    "Times this engine found another one had taken its lease over, and stepped down.",
)
REDIS_ERRORS = Counter(
    "tradewire_redis_errors_total", "Redis errors seen, by process role and kind.", ["role", "kind"]
)

# -- gateway ------------------------------------------------------------------------------------
ORDER_ACK_SECONDS = Histogram(
    "tradewire_order_ack_seconds", "Gateway time from receiving an order to answering it.", buckets=_SLOW
)
PUBLISH_TO_SEND_SECONDS = Histogram(
    "tradewire_publish_to_send_seconds",
    "Time from the gateway receiving a Pub/Sub message to writing it to a WebSocket.",
    buckets=_FAST,
)
EXCHANGE_TO_SEND_SECONDS = Histogram(
    "tradewire_exchange_to_send_seconds",
    "Time from the command's exchange timestamp to the update being written to a WebSocket.",
    buckets=_SLOW,
)
WS_MESSAGES = Counter(
    "tradewire_ws_messages_total", "WebSocket messages, by fate: sent, conflated, dropped.", ["fate"]
)
WS_DISCONNECTS = Counter("tradewire_ws_disconnects_total", "WebSocket disconnects, by reason.", ["reason"])
RATE_LIMIT_HITS = Counter(
    "tradewire_rate_limit_hits_total", "Requests refused by a limit, by limit.", ["limit"]
)
HTTP_REQUESTS = Counter(
    "tradewire_http_requests_total",
    "REST and WebSocket API requests, by REST endpoint and status.",
    ["endpoint", "status"],
)
CLOCK_SKEW = Gauge(
    "tradewire_clock_skew_seconds",
    "This gateway's clock minus Redis's (TIME), measured every 10 s; past 1 s its stamps are overruled.",
)
WS_CONNECTIONS = Gauge("tradewire_ws_connections", "Open WebSocket connections.")
WS_SUBSCRIPTIONS = Gauge("tradewire_ws_subscriptions", "Stream subscriptions over all connections.")
WS_QUEUE_DEPTH_MAX = Gauge(
    "tradewire_ws_queue_depth_max", "The deepest per-connection send queue, sampled each second."
)
