"""Snapshot + tail replay must equal a straight replay, event for event and state for state."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from tradewire.engine import Engine, EventCodec, ExchangeConfig, decode
from tradewire.engine.snapshot import SnapshotError, dump, load

VECTORS = Path(__file__).resolve().parents[2] / "vectors"
CONFIG = ExchangeConfig.from_dict(json.loads((VECTORS / "config.json").read_text()))


def _random_stream(seed: int, n: int) -> list[str]:
    rng = random.Random(seed)
    users = ["ann", "ben", "cat", "dan"]
    lines = []
    for user in users:
        lines.append(json.dumps({"type": "deposit", "user": user, "asset": "USDT", "amount": "100000"}))
        lines.append(json.dumps({"type": "deposit", "user": user, "asset": "BTC", "amount": "100"}))
        lines.append(json.dumps({"type": "deposit", "user": user, "asset": "ETH", "amount": "1000"}))
    for i in range(n):
        user = rng.choice(users)
        market = rng.choice(["BTC-USDT", "ETH-USDT"])
        roll = rng.random()
        if roll < 0.3:
            cmd: dict[str, object] = {"type": "cancel", "user": user, "market": market}
            if rng.random() < 0.5:
                cmd["order_id"] = rng.randint(1, i + 1)
            else:
                cmd["client_id"] = f"c{rng.randint(0, 40)}"
        else:
            cmd = {
                "type": "new_order",
                "user": user,
                "market": market,
                "side": rng.choice(["buy", "sell"]),
                "kind": "limit" if roll < 0.9 else "market",
                "qty": f"{rng.randint(1, 50) / 100:.2f}",
                "tif": rng.choice(["GTC", "GTC", "GTC", "IOC", "FOK"]),
                "stp": rng.choice(["expire_maker", "expire_taker", "expire_both", "none"]),
            }
            if cmd["kind"] == "limit":
                cmd["price"] = f"{rng.randint(9500, 10500) / 100:.2f}"
                cmd["post_only"] = rng.random() < 0.1
            if rng.random() < 0.3:
                cmd["client_id"] = f"c{rng.randint(0, 40)}"
        lines.append(json.dumps(cmd))
    return lines


def _run(engine: Engine, lines: list[str]) -> list[dict[str, object]]:
    codec = EventCodec(CONFIG)
    return [codec.render(e) for line in lines for e in engine.apply(decode(line))]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_snapshot_then_tail_equals_straight_replay(seed: int) -> None:
    lines = _random_stream(seed, 1500)
    straight = Engine(CONFIG)
    expected = _run(straight, lines)
    codec = EventCodec(CONFIG)
    for cut in (0, 7, 400, 1000, len(lines)):
        first = Engine(CONFIG)
        head = _run(first, lines[:cut])
        restored = load(dump(first), CONFIG)
        assert head + _run(restored, lines[cut:]) == expected
        assert codec.state(restored) == codec.state(straight)
        assert dump(restored) == dump(straight)


def test_snapshot_of_populated_book_round_trips_byte_for_byte() -> None:
    engine = Engine(CONFIG)
    _run(engine, _random_stream(9, 800))
    assert engine.orders, "the stream should leave resting orders"
    data = dump(engine)
    assert dump(load(data)) == data


def test_snapshot_under_another_config_is_refused() -> None:
    engine = Engine(CONFIG)
    other = json.loads((VECTORS / "config.json").read_text())
    other["markets"]["BTC-USDT"]["taker_fee"] = "0.003"
    with pytest.raises(SnapshotError, match="different exchange config"):
        load(dump(engine), ExchangeConfig.from_dict(other))


def test_garbage_is_not_a_snapshot() -> None:
    with pytest.raises(SnapshotError, match="not an engine snapshot"):
        load(b"{nope")
