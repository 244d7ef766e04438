"""The demo traders' policies against the real pure engine: they keep a two-sided market that trades."""

from __future__ import annotations

import random
from collections import Counter

import orjson

from tradewire.bots import MarketMaker, Taker
from tradewire.demo import DEMO_CONFIG
from tradewire.engine import Engine, EventCodec, ExchangeConfig, decode
from tradewire.journal.entries import Reply


def _run(steps: int, seed: int) -> tuple[Engine, Counter[str], list[dict[str, object]]]:
    config = ExchangeConfig.from_dict(DEMO_CONFIG)
    engine, codec = Engine(config), EventCodec(config)
    deposits = [
        {"type": "deposit", "user": user, "asset": asset, "amount": "100000000"}
        for user in ("demo-maker", "demo-taker")
        for asset in config.assets
    ]
    for command in deposits:
        engine.apply(decode(orjson.dumps(command)))
    market = config.markets["BTC-USDT"]
    rng = random.Random(seed)
    maker = MarketMaker(market, "demo-maker", random.Random(rng.random()), 97_000 * 10**8)
    taker = Taker(market, "demo-taker", random.Random(rng.random()))
    outcomes: Counter[str] = Counter()
    trades: list[dict[str, object]] = []
    for _ in range(steps):
        for command in maker.step() + taker.step(maker.mid):
            events = [codec.render(e) for e in engine.apply(decode(orjson.dumps(command)))]
            outcomes[str(events[0].get("reason", events[0]["type"]))] += 1
            maker.on_reply(command, Reply("r", "0-0", 0, events))
            for event in events:
                if event["type"] == "trade":
                    trades.append(event)
                    maker.on_fill(event)
    return engine, outcomes, trades


def test_bots_with_many_steps_keep_both_sides_quoted_and_trade() -> None:
    engine, outcomes, trades = _run(400, seed=1)
    book = engine.books["BTC-USDT"]
    assert book.bids.depth() and book.asks.depth()
    assert trades, "the taker never traded"
    assert outcomes["accepted"] > 1000
    assert not set(outcomes) - {"accepted", "user"}, outcomes


def test_bots_with_many_steps_keep_the_ladder_bounded() -> None:
    engine, _, _ = _run(400, seed=2)
    resting = sum(1 for order in engine.orders.values() if order.user == "demo-maker")
    assert 0 < resting <= 2 * 12 + 4


def test_bots_with_the_same_seed_send_the_same_commands() -> None:
    first, second = _run(100, seed=3), _run(100, seed=3)
    assert first[2] == second[2]
    assert first[1] == second[1]
