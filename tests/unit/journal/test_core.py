"""The service's pure core: a batch's transaction, and a core restored from a snapshot continuing exactly."""

from __future__ import annotations

import msgspec
import orjson
import pytest

from tests.integration.journal.support import ONE_TRADE, load_stream
from tests.strategies import VECTORS_CONFIG, random_stream
from tradewire import keys
from tradewire.bus import publish
from tradewire.engine import ExchangeConfig
from tradewire.journal import quota
from tradewire.journal.core import Core, Op
from tradewire.journal.entries import (
    CLOCK_TOLERANCE_MS,
    EVENTS_PER_ENTRY,
    CommandEntry,
    Fields,
    command_outcomes,
    parse_replies,
)
from tradewire.marketdata.builder import SLOW_STREAMS_MS

CONFIG = ExchangeConfig.from_dict(VECTORS_CONFIG)
EPOCH = b"0123456789abcdef"


def _entries(lines: list[bytes], first: int = 1, step_ms: int = 7) -> list[CommandEntry]:
    """Entries as a gateway stamps and Redis appends them: the id's time is the stamp's."""
    stamps = [1_700_000_000_000 + (first + i) * step_ms for i in range(len(lines))]
    return [
        CommandEntry(b"%d-%d" % (ts, first + i), line, ts, b"%032x" % i, b"gw")
        for i, (ts, line) in enumerate(zip(stamps, lines, strict=True))
    ]


def _lines(seed: int, count: int) -> list[bytes]:
    return [line.encode() for line in random_stream(seed, count // 2)] + load_stream(seed, count // 2)


def _events_entries(ops: list[Op]) -> list[tuple[bytes, Fields]]:
    """The events entries a transaction adds, as ``(entry id, fields)``."""
    found = []
    for op in ops:
        if op[0] == b"XADD" and op[1] == keys.EVENTS.encode():
            pairs = op[3:]
            found.append((op[2], dict(zip(pairs[::2], pairs[1::2], strict=True))))
    return found  # type: ignore[return-value]


def _outcomes(ops: list[Op]) -> list[tuple[bytes, Fields]]:
    """The outcomes a transaction records, a command at a time: ``(command id, fields)``."""
    return [pair for entry in _events_entries(ops) for pair in command_outcomes(*entry)]


def test_core_batch_with_commands_writes_events_views_replies_then_the_marker() -> None:
    entries = _entries(_lines(1, 250))
    ops = Core(CONFIG).batch(entries, EPOCH)
    assert ops[0][:2] == (b"SCRIPT", b"LOAD")
    assert ops[-1] == (b"SET", keys.APPLIED, entries[-1].entry_id)
    recorded = _events_entries(ops)
    ids = [entry.entry_id for entry in entries]
    assert [entry_id for entry_id, _ in recorded] == ids[EVENTS_PER_ENTRY - 1 :: EVENTS_PER_ENTRY] + ids[-1:]
    assert [list(fields) for _, fields in recorded] == [
        ids[at : at + EVENTS_PER_ENTRY] for at in range(0, len(ids), EVENTS_PER_ENTRY)
    ], "each entry holds the next commands in journal order, under the last one's id"
    replies = [op for op in ops if op[0] == b"PUBLISH" and op[1] == b"tw:reply:gw"]
    assert len(replies) == 1, "one reply message per source and batch"
    lines = replies[0][2].split(b"\n")  # type: ignore[union-attr]
    assert len(lines) == len(entries)
    for line, entry, (cmd, outcome) in zip(lines, entries, _outcomes(ops), strict=True):
        reply = orjson.loads(line)
        assert reply["cmd"] == entry.entry_id.decode() and reply["rid"] == entry.rid.decode()
        assert cmd == entry.entry_id and outcome[b"rid"] == entry.rid
        assert outcome[b"ts"] == b"%d" % entry.ts
        assert reply["events"] == orjson.loads(outcome[b"e"])
    assert any(op[0] == b"EVALSHA" for op in ops), "no market data was published"
    assert ops.index(replies[0]) > max(i for i, op in enumerate(ops) if op[0] == b"EVALSHA")


def _script_runs(call: tuple[object, ...]) -> list[tuple[str, list[bytes | str]]]:
    """``(channel, payloads)`` of each run of one bus-script call, decoded as the script reads it."""
    nkeys = int(call[2])  # type: ignore[call-overload]
    args = list(call[3 + nkeys + 2 :])  # after the keys, the epoch and the history length
    runs: list[tuple[str, list[bytes | str]]] = []
    while args:
        channel, count = str(args[0]), int(args[1])  # type: ignore[call-overload]
        runs.append((channel, args[2 : 2 + count]))  # type: ignore[arg-type]
        args = args[2 + count :]
    assert len(runs) * 2 == nkeys, "two keys (meta, history) per run"
    return runs


def test_core_batch_publishes_each_market_in_one_script_call_with_trades_in_order() -> None:
    entries = _entries(_lines(5, 400))
    core = Core(CONFIG)
    ops = core.batch(entries, EPOCH)
    traded = [
        trade
        for _, outcome in _outcomes(ops)
        for trade in orjson.loads(outcome[b"e"])
        if trade["type"] == "trade"
    ]
    assert traded, "the batch made no trade"
    calls = [op for op in ops if op[0] == b"EVALSHA" and op[1] == publish.SHA]
    by_market = {str(call[3]).split("{")[1].split("}")[0]: _script_runs(call) for call in calls}
    assert len(by_market) == len(calls), "a market's publications came in more than one call"
    assert {t["market"] for t in traded} <= set(by_market)
    for market, runs in by_market.items():
        assert all(channel.startswith(f"md:{{{market}}}:") for channel, _ in runs)
        streams = [channel.rsplit(":", 1)[1] for channel, _ in runs]
        assert "depth" in streams
        ids = [
            orjson.loads(p)["t"] for channel, payloads in runs if channel.endswith(":trade") for p in payloads
        ]
        assert ids == [t["trade_id"] for t in traded if t["market"] == market]


def test_core_batch_sends_each_source_its_own_replies_in_journal_order() -> None:
    lines = _lines(3, 60)
    sources = (b"gw-a", b"gw-b", b"")
    entries = [
        CommandEntry(
            b"%d-0" % (1_700_000_000_000 + i), line, 1_700_000_000_000 + i, b"%032x" % i, sources[i % 3]
        )
        for i, line in enumerate(lines)
    ]
    ops = Core(CONFIG).batch(entries, EPOCH)
    published = {
        op[1]: op[2]
        for op in ops
        if op[0] == b"PUBLISH" and op[1].startswith(b"tw:reply:")  # type: ignore[union-attr]
    }
    assert set(published) == {b"tw:reply:gw-a", b"tw:reply:gw-b"}, "no reply for a command without a source"
    for src in (b"gw-a", b"gw-b"):
        replies = parse_replies(published[b"tw:reply:" + src])
        assert [r.cmd for r in replies] == [e.entry_id.decode() for e in entries if e.src == src]


@pytest.mark.parametrize("step_ms", [7, 9_000], ids=["same-minutes", "across-minutes-and-hours"])
def test_core_restored_from_a_snapshot_continues_exactly_as_the_original(step_ms: int) -> None:
    """With commands 9 s apart the silent replay crosses minutes and hours, so the klines it sums a
    minute at a time must close and continue every interval's bars exactly as the live path does."""
    entries = _entries(_lines(2, 3000), step_ms=step_ms)
    straight = Core(CONFIG)
    interrupted = Core(CONFIG)
    for start in range(0, 1500, 300):
        assert interrupted.batch(entries[start : start + 300], EPOCH) == straight.batch(
            entries[start : start + 300], EPOCH
        )
    restored = Core.from_state(CONFIG, interrupted.to_state())
    # Part of the tail is replayed silently (as recovery does), the rest goes live.
    for start in range(1500, 2100, 300):
        straight.batch(entries[start : start + 300], EPOCH)
    restored.replay(entries[1500:1800])
    restored.replay(entries[1800:2100])
    restored.settle()
    assert restored.to_state() == straight.to_state(), "the silent replay left another state"
    for start in range(2100, len(entries), 300):
        assert restored.batch(entries[start : start + 300], EPOCH) == straight.batch(
            entries[start : start + 300], EPOCH
        )
    assert restored.to_state() == straight.to_state()
    assert restored.count == straight.count == len(entries)


@pytest.mark.parametrize("step_ms", [7, 9_000], ids=["same-minutes", "across-minutes-and-hours"])
def test_core_replaying_the_journal_from_the_start_reaches_the_state_of_one_that_ran_it_live(
    step_ms: int,
) -> None:
    """Recovery without a snapshot: every view summed silently (klines and the ticker a minute at a
    time) ends where the live batches left it, and the next live batch publishes the same bytes."""
    entries = _entries(_lines(4, 2400), step_ms=step_ms)
    live, silent = Core(CONFIG), Core(CONFIG)
    for start in range(0, 2000, 250):
        live.batch(entries[start : start + 250], EPOCH)
        silent.replay(entries[start : start + 250])
    silent.settle()
    assert silent.to_state() == live.to_state()
    assert silent.batch(entries[2000:], EPOCH) == live.batch(entries[2000:], EPOCH)


def test_core_replaying_a_balance_that_came_back_to_zero_keeps_it_as_live_did() -> None:
    """A balance that first appears in the tail and is spent to nothing: the live views hold it at
    (0, 0), and so must the state a silent replay settles to (it did not)."""
    commands = [
        {"type": "deposit", "user": "alice", "asset": "USDT", "amount": "10"},
        {"type": "deposit", "user": "bob", "asset": "BTC", "amount": "5"},
        {"type": "withdraw", "user": "bob", "asset": "BTC", "amount": "5"},
    ]
    entries = _entries([orjson.dumps(command) for command in commands])
    live = Core(CONFIG)
    live.batch(entries[:1], EPOCH)
    snapshot = live.to_state()
    live.batch(entries[1:], EPOCH)
    silent = Core.from_state(CONFIG, snapshot)
    silent.replay(entries[1:])
    silent.settle()
    assert live.engine.as_pure().balances["bob"]["BTC"] == [0, 0]
    assert silent.to_state() == live.to_state()


def test_core_holds_exchange_time_within_a_second_of_redis_whatever_a_gateway_stamps() -> None:
    """One gateway's clock a day ahead, another's a day behind: exchange time (order times, trades,
    candles, the ticker's window) moves at most a second past the time Redis appended the command,
    instead of jumping a day ahead for good; the events entry still records the stamp as sent, and
    a silent replay of the journal reaches the same state."""
    entries = _entries(_lines(5, 400))
    day = 86_400_000
    skewed = list(entries)
    skewed[100] = msgspec.structs.replace(entries[100], ts=entries[100].ts + day)
    skewed[200] = msgspec.structs.replace(entries[200], ts=entries[200].ts - day)
    live = Core(CONFIG)
    ops = live.batch(skewed[:150], EPOCH)
    assert live.ts == entries[100].ts + CLOCK_TOLERANCE_MS
    [recorded] = [outcome for cmd, outcome in _outcomes(ops) if cmd == entries[100].entry_id]
    assert recorded[b"ts"] == b"%d" % (entries[100].ts + day)
    live.batch(skewed[150:], EPOCH)
    assert live.ts == entries[-1].ts
    silent = Core(CONFIG)
    silent.replay(skewed[:150])
    silent.replay(skewed[150:])
    silent.settle()
    assert silent.to_state() == live.to_state()


def test_core_with_a_short_order_history_trims_as_a_silent_replay_then_live_batch_would() -> None:
    """Three closed orders kept per user: the live batches trim whenever a user goes past three; a
    core that replayed the same journal silently counts the same closed orders, so its state is the
    live one's and its next batch trims the same users at the same command."""
    entries = _entries(_lines(6, 2400))
    live, silent = Core(CONFIG), Core(CONFIG)
    live.accounts.history = silent.accounts.history = 3
    trims = 0
    for start in range(0, 2000, 250):
        ops = live.batch(entries[start : start + 250], EPOCH)
        trims += sum(1 for op in ops if op[0] == "EVALSHA")
        silent.replay(entries[start : start + 250])
    silent.settle()
    assert trims > 20
    assert silent.to_state() == live.to_state()
    ops = live.batch(entries[2000:], EPOCH)
    assert any(op[0] == "EVALSHA" for op in ops)
    assert silent.batch(entries[2000:], EPOCH) == ops


def test_core_from_a_snapshot_holding_an_unflushed_order_that_the_tail_fills_counts_it_closed_once() -> None:
    """Accounts.to_state promises to hold the unflushed work: bob's order is accepted (dirty, open)
    when the state is taken, and filled in the tail. The live flush counts one closed order for bob;
    the restored core counts it in the silent replay (a fill closes it), and must not count it again
    in settle()'s flush (it was still unflushed there, now FILLED). Found by a second reading."""
    commands = ONE_TRADE
    entries = _entries([orjson.dumps(command) for command in commands])
    live = Core(CONFIG)
    live.batch(entries[:2], EPOCH)
    live.apply(entries[2])  # part of a batch: not flushed yet
    snapshot = live.to_state()
    live.batch(entries[3:], EPOCH)  # the batch's flush writes bob's order, filled
    silent = Core.from_state(CONFIG, snapshot)
    silent.replay(entries[3:])
    silent.settle()
    assert silent.accounts._closed_kept == live.accounts._closed_kept == {"alice": 1, "bob": 1}
    live.tick(EPOCH)  # the klines and ticker its last batch held back (recovery renders them anew)
    assert silent.to_state() == live.to_state()


def _published_streams(ops: list[Op]) -> set[str]:
    """The market-data channels the batch's script calls publish on."""
    return {
        arg
        for op in ops
        if op[0] == b"EVALSHA"
        for arg in op
        if isinstance(arg, str) and arg.startswith("md:")
    }


def _payloads(op: Op, channel: str) -> list[bytes]:
    """The payloads a bus script call publishes on ``channel``: ARGV is the epoch, the history
    length, then per channel its name, its count and its payloads."""
    args = list(op[3 + int(op[2]) :])  # after EVALSHA, the SHA, the key count and the keys
    at = 2
    while at < len(args):
        name, count = args[at], int(args[at + 1])
        if name == channel:
            return [
                bytes(p) if isinstance(p, bytes) else str(p).encode() for p in args[at + 2 : at + 2 + count]
            ]
        at += 2 + count
    return []


def test_core_publishes_klines_and_tickers_when_exchange_time_enters_a_new_slot_or_on_tick() -> None:
    """Two trades 1 ms apart in one 100-ms slot: the first batch enters the slot and publishes the
    bars, the second holds their cache writes and publications back (depth and the trade still go
    out) until the next slot's batch or a tick, whichever comes first; a tick with nothing held
    back is empty."""
    lines = [orjson.dumps(command) for command in ONE_TRADE]
    lines += [orjson.dumps(ONE_TRADE[2]), orjson.dumps(ONE_TRADE[3])]
    start = (1_700_000_000_000 // SLOW_STREAMS_MS + 1) * SLOW_STREAMS_MS  # a slot's first ms
    stamps = [start, start, start, start + 1, start + 1, start + 2]
    entries = [
        CommandEntry(b"%d-%d" % (ts, i), line, ts, b"%032x" % i, b"gw")
        for i, (ts, line) in enumerate(zip(stamps, lines, strict=True))
    ]
    core = Core(CONFIG)
    first = core.batch(entries[:4], EPOCH)
    assert "md:{BTC-USDT}:kline_1m" in _published_streams(first)
    assert not core.holds()
    held = core.batch(entries[4:], EPOCH)  # bob sells again and alice takes it, in the same slot
    assert "md:{BTC-USDT}:kline_1m" not in _published_streams(held)
    assert "md:{BTC-USDT}:trade" in _published_streams(held)
    assert not [op for op in held if op[:2] == ("ZADD", "md:{BTC-USDT}:klines:1m")], "bars wait"
    assert core.holds()
    later = Core.from_state(CONFIG, core.to_state())
    tick = core.tick(EPOCH)
    assert "md:{BTC-USDT}:kline_1m" in _published_streams(tick)
    [bar] = [orjson.loads(op[3]) for op in tick if op[:2] == ("ZADD", "md:{BTC-USDT}:klines:1m")]
    assert bar[8] == 2, "the cache counts both trades, written once"
    [[payload]] = [_payloads(op, "md:{BTC-USDT}:kline_1m") for op in tick if op[0] == b"EVALSHA"]
    assert orjson.loads(payload)["k"]["n"] == 2, "the bar's latest version, once"
    assert not core.holds() and core.tick(EPOCH) == []
    # the same held publications go out with the next slot's batch, when one comes before a tick
    ts = start + SLOW_STREAMS_MS
    next_slot = CommandEntry(b"%d-9" % ts, lines[0], ts, b"9" * 32, b"gw")
    assert "md:{BTC-USDT}:kline_1m" in _published_streams(later.batch([next_slot], EPOCH))
    assert not later.holds()


def test_core_restored_from_a_snapshot_publishes_no_partial_book_before_its_book_moves() -> None:
    """A restored core's first flush that enters a new slot with no depth change (a deposit in the
    next minute closes bars only) publishes what the original does: no ``depth20``. The depth
    book's best levels were not part of its state, so a restored one compared the published
    partial book with an empty one and published an empty book (found by a second reading)."""
    entries = _entries(_lines(5, 600))
    original = Core(CONFIG)
    for start in range(0, 600, 100):
        original.batch(entries[start : start + 100], EPOCH)
    original.tick(EPOCH)
    restored = Core.from_state(CONFIG, original.to_state())
    ts = entries[-1].ts + 60_000
    deposit = {"type": "deposit", "user": "alice", "asset": "USDT", "amount": "1"}
    later = [CommandEntry(b"%d-0" % ts, orjson.dumps(deposit), ts, b"d" * 32, b"gw")]
    ops = restored.batch(later, EPOCH)
    assert ops == original.batch(later, EPOCH)
    assert not any(_payloads(op, "md:{BTC-USDT}:depth20") for op in ops if op[0] == b"EVALSHA")
    assert any(_payloads(op, "md:{BTC-USDT}:kline_1m") for op in ops if op[0] == b"EVALSHA")


def _filled_calls(ops: list[Op]) -> list[tuple[object, ...]]:
    return [op for op in ops if op[0] == b"HINCRBY" and str(op[1]).startswith("tw:{0}:quota:")]


def test_core_batch_takes_orders_that_traded_for_the_first_time_off_the_unfilled_order_counts() -> None:
    """Binance's ORDERS limit counts unfilled orders: each order's first trade, as taker or maker,
    once, counted per account in the batch's transaction by a plain HINCRBY (no clock, no script)."""
    core = Core(CONFIG)
    setup = [orjson.dumps(c) for c in ONE_TRADE[:3]]
    assert _filled_calls(core.batch(_entries(setup), EPOCH)) == []
    more = {"type": "new_order", "user": "alice", "market": "BTC-USDT", "side": "buy", "kind": "limit",
            "qty": "0.5", "price": "100"}  # fmt: skip
    entries = _entries([orjson.dumps(ONE_TRADE[3] | {"qty": "0.5"}), orjson.dumps(more)], first=4)
    ops = core.batch(entries, EPOCH)
    # bob's sell traded twice but counts once; alice's two buys each once
    assert _filled_calls(ops) == [
        (b"HINCRBY", quota.counts_key("alice"), b"f", 2),
        (b"HINCRBY", quota.counts_key("bob"), b"f", 1),
    ]
    rest = {"type": "new_order", "user": "alice", "market": "BTC-USDT", "side": "buy", "kind": "limit",
            "qty": "1", "price": "90"}  # fmt: skip
    assert _filled_calls(core.batch(_entries([orjson.dumps(rest)], first=6), EPOCH)) == []


def test_core_snapshots_amounts_past_64_bits_and_continues_exactly() -> None:
    """An 18-decimal asset: 20 ETH are 2 * 10**19 units, past MessagePack's integers. The views'
    state must still be written (the engine died at every snapshot) and restore exactly."""
    wide = ExchangeConfig.from_dict(
        VECTORS_CONFIG | {"assets": VECTORS_CONFIG["assets"] | {"ETH": {"precision": 18}}}
    )
    order = {"type": "new_order", "market": "ETH-USDT", "kind": "limit", "price": "2000"}
    commands = [
        {"type": "deposit", "user": "alice", "asset": "ETH", "amount": "40"},
        {"type": "deposit", "user": "bob", "asset": "USDT", "amount": "100000"},
        order | {"user": "alice", "side": "sell", "qty": "18"},
        order | {"user": "alice", "side": "sell", "qty": "17.5", "price": "2001"},
        order | {"user": "bob", "side": "buy", "qty": "12"},
        order | {"user": "bob", "side": "buy", "qty": "11", "price": "2001"},
        order | {"user": "bob", "side": "buy", "qty": "9", "price": "2001"},
        {"type": "withdraw", "user": "alice", "asset": "USDT", "amount": "1000"},
    ]
    entries = _entries([orjson.dumps(command) for command in commands])
    straight, interrupted = Core(wide), Core(wide)
    assert interrupted.batch(entries[:5], EPOCH) == straight.batch(entries[:5], EPOCH)
    assert interrupted.engine.balance("alice", "ETH")[0] + 18 * 10**18 + 17_500 * 10**15 == 40 * 10**18
    state = interrupted.to_state()
    restored = Core.from_state(wide, state)
    assert restored.to_state() == state
    assert restored.batch(entries[5:], EPOCH) == straight.batch(entries[5:], EPOCH)
    assert restored.to_state() == straight.to_state()
    assert straight.engine.balance("bob", "ETH")[0] > 2**64, "the run never went past 64 bits"


def test_core_state_of_ordinary_amounts_stays_messagepack() -> None:
    """JSON only where MessagePack cannot go: the views' state of ordinary amounts keeps its bytes."""
    core = Core(CONFIG)
    core.batch(_entries(_lines(3, 400)), EPOCH)
    assert core.accounts.to_state()[:1] != b"[" and core.marketdata.to_state()[:1] != b"["
    assert msgspec.msgpack.decode(core.accounts.to_state())  # MessagePack, decoded untyped
