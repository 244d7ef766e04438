"""The engine service's pure core: journal entries in, one batch's Redis commands out.

:class:`Core` holds the matching engine and the two views derived from its events (market data and
accounts). For a batch of journal entries, :meth:`Core.batch` applies each command and returns the
whole transaction the shell must run, in this order:

1. ``SCRIPT LOAD`` of the bus script (so the ``EVALSHA`` calls below cannot miss it);
2. per ``EVENTS_PER_ENTRY`` commands, one ``XADD tw:{0}:events <last command id>`` whose fields are
   the commands' ids, each with its reply message (``entries.events_ops``: anyone finds a command's
   outcome with one ``XRANGE <id> + COUNT 1``);
3. when orders traded for the first time, an ``HINCRBY`` per account that takes them off its
   unfilled-order counts (``tradewire/journal/quota.py``); the accounts views' ops, then the
   market-data cache writes, then one call of the bus script per market with all its publications
   of the batch, in order: depth diffs, book tickers and trades always; partial books, klines and
   tickers only when the batch takes exchange time into a new 100-ms slot (or the shell says they
   waited long enough), else they wait (:meth:`Core.tick`);
4. per source, one ``PUBLISH tw:reply:<src>`` with the replies to its commands in the batch, one
   JSON object per line (a gateway's thousand replies cost one message, not a thousand);
5. ``SET tw:{0}:applied <last command id>``, and the snapshot when one is due.

Nothing here touches Redis or a clock, so the same entries always give the same commands, and
recovery is the same code with the output thrown away (:meth:`Core.replay`).

Exchange time: each entry carries the gateway's ``ts``, held within a second of the time in the
entry's id (``entries.exchange_time``: Redis's clock at append, so a gateway with a wrong clock
cannot move exchange time far); views get ``max(that, previous)`` so that time never runs backwards
when gateways' clocks disagree. Replies and events entries keep the entry's own ``ts``.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field

import msgspec

from tradewire import keys
from tradewire.accounts import Accounts
from tradewire.bus.publish import load_op, publish_market_op
from tradewire.engine import ExchangeConfig, Rejected, Trade, decode
from tradewire.engine import snapshot as engine_snapshot
from tradewire.engine.native import AnyEngine, fastest_engine, fastest_from
from tradewire.journal.entries import (
    CommandEntry,
    command_and_ts,
    events_ops,
    exchange_time,
    unclamped,
)
from tradewire.journal.quota import filled_ops
from tradewire.journal.render import EventsRenderer, reply_renderer
from tradewire.journal.snapshots import pack_state, snapshot_ops, unpack_state
from tradewire.marketdata.builder import SLOW_STREAMS_MS, MarketData

Op = tuple[bytes | str | int, ...]

STATE_FORMAT = 1
_ACCEPTED = ("accepted", "")


class _State(msgspec.Struct, array_like=True):
    format: int
    ts: int
    """The latest exchange time applied."""
    count: int
    """Commands applied since the journal began (for the lag gauge)."""
    engine: bytes
    marketdata: bytes
    accounts: bytes


_state_encoder = msgspec.msgpack.Encoder()
_state_decoder = msgspec.msgpack.Decoder(_State)


@dataclass
class BatchStats:
    """What a batch did, for the metrics: commands by (outcome, reason) and trades by market."""

    outcomes: dict[tuple[str, str], int] = field(default_factory=dict)
    trades: dict[str, int] = field(default_factory=dict)


class Core:
    """Engine + market data + accounts, advanced one journal entry at a time."""

    def __init__(
        self,
        config: ExchangeConfig,
        *,
        engine: AnyEngine | None = None,
        marketdata: MarketData | None = None,
        accounts: Accounts | None = None,
        ts: int = 0,
        count: int = 0,
    ) -> None:
        self.config = config
        self.engine = engine or fastest_engine(config)
        self.marketdata = marketdata or MarketData(config)
        self.accounts = accounts or Accounts(config)
        self.render = EventsRenderer(config).render
        self.reply = reply_renderer(config, self.render)
        self.ts = ts
        self.count = count
        self._balance_of = self.engine.balance

    # -- applying ---------------------------------------------------------------------------------

    def apply(self, entry: CommandEntry, stats: BatchStats | None = None) -> bytes:
        """Apply one entry to the engine and both views; return its events as the spec's JSON list."""
        command = decode(entry.command)
        events = self.engine.apply(command)
        stamp = exchange_time(entry.entry_id, entry.ts)
        ts = stamp if stamp > self.ts else self.ts
        self.ts = ts
        self.count += 1
        self.marketdata.apply(events, ts)
        self.accounts.apply(command, events, ts, self._balance_of)
        if stats is not None:
            first = events[0]
            key = ("rejected", first.reason) if type(first) is Rejected else ("accepted", "")
            stats.outcomes[key] = stats.outcomes.get(key, 0) + 1
            for event in events:
                if type(event) is Trade:
                    stats.trades[event.market] = stats.trades.get(event.market, 0) + 1
        return self.render(events)

    def batch(
        self,
        entries: Sequence[CommandEntry],
        epoch: bytes,
        stats: BatchStats | None = None,
        *,
        slow: bool = False,
    ) -> list[Op]:
        """Apply ``entries`` (in journal order) and return the batch's transaction (see the module).

        The same as :meth:`apply` per entry, with the loop's lookups hoisted out of it. The
        partial-book, kline and ticker publications held back go out when exchange time enters a
        new slot of ``SLOW_STREAMS_MS``, or with ``slow`` (the shell's say: they waited long enough
        while exchange time stood still)."""
        ops: list[Op] = [load_op()]
        replies: dict[bytes, list[bytes]] = {}
        outcomes: list[tuple[bytes, bytes]] = []
        outcome = outcomes.append
        engine_apply = self.engine.apply
        md_apply = self.marketdata.apply
        accounts_apply = self.accounts.apply
        balance_of = self._balance_of
        reply = self.reply
        counts = stats.outcomes if stats is not None else None
        trades = stats.trades if stats is not None else None
        ts = self.ts
        lo, hi = unclamped(entries[0].entry_id, entries[-1].entry_id) if entries else (1, 0)
        for entry in entries:
            command = decode(entry.command)
            events = engine_apply(command)
            stamp = entry.ts
            if not lo <= stamp <= hi:
                stamp = exchange_time(entry.entry_id, stamp)
            if stamp > ts:
                ts = stamp
            md_apply(events, ts)
            accounts_apply(command, events, ts, balance_of)
            if counts is not None and trades is not None:
                first = events[0]
                key = ("rejected", first.reason) if type(first) is Rejected else _ACCEPTED
                counts[key] = counts.get(key, 0) + 1
                if len(events) > 1:
                    for event in events:
                        if type(event) is Trade:
                            trades[event.market] = trades.get(event.market, 0) + 1
            payload = reply(entry, events)
            outcome((entry.entry_id, payload))
            src = entry.src
            if src:
                payloads = replies.get(src)
                if payloads is None:
                    payloads = replies[src] = []
                payloads.append(payload)
        slow = slow or ts // SLOW_STREAMS_MS != self.ts // SLOW_STREAMS_MS
        self.ts = ts
        self.count += len(entries)
        ops += events_ops(outcomes)
        ops += filled_ops(self.accounts.first_fills())
        ops += self.accounts.flush()
        ops += _publications(self.marketdata.flush(slow), epoch)
        for src, payloads in replies.items():
            ops.append((b"PUBLISH", b"tw:reply:" + src, b"\n".join(payloads)))
        if entries:
            ops.append((b"SET", keys.APPLIED, entries[-1].entry_id))
        return ops

    def holds(self) -> bool:
        """Whether partial-book, kline or ticker publications wait for exchange time to enter a new
        slot (see :meth:`tick`)."""
        return self.marketdata.holds()

    def tick(self, epoch: bytes) -> list[Op]:
        """The transaction that makes the partial-book, kline and ticker publications batches held
        back, for the shell to run when no command came for a while (empty when none wait): a batch
        makes them only when it takes exchange time into a new slot of ``SLOW_STREAMS_MS``."""
        if not self.marketdata.holds():
            return []
        return [load_op(), *_publications(self.marketdata.flush(slow=True), epoch)]

    def replay(self, entries: Sequence[CommandEntry]) -> None:
        """Apply ``entries`` whose effects are already in Redis, rebuilding state only; end the
        replay with :meth:`settle`."""
        self.replay_raw(
            [(entry.entry_id, [b"c", entry.command, b"ts", b"%d" % entry.ts]) for entry in entries]
        )

    def replay_raw(self, page: Sequence[tuple[bytes, Sequence[bytes]]], *, accounts: bool = True) -> None:
        """:meth:`replay` of an ``XRANGE`` reply as it comes (``[(id, [field, value, ...]), ...]``):
        the engine and the views' state move, nothing is rendered (no events, replies, payloads or
        Redis ops: they are in Redis already).

        ``accounts=False`` leaves the accounts' open orders behind (15 % of the replay's time):
        recovery then takes them from Redis (``Accounts.restore_open``)."""
        engine_apply = self.engine.apply
        md_replay = self.marketdata.replay
        accounts_replay = self.accounts.replay if accounts else None
        ts = self.ts
        lo, hi = unclamped(page[0][0], page[-1][0]) if page else (1, 0)
        for entry_id, flat in page:
            command, stamp = command_and_ts(flat)  # as the live reader read the entry
            decoded = decode(command)
            events = engine_apply(decoded)
            if not lo <= stamp <= hi:
                stamp = exchange_time(entry_id, stamp)
            if stamp > ts:
                ts = stamp
            md_replay(events, ts)
            if accounts_replay is not None:
                accounts_replay(decoded, events, ts)
        self.ts = ts
        self.count += len(page)

    def settle(self) -> None:
        """End a replay: the views reach the state a flush leaves, without rendering it."""
        engine = self.engine.as_pure()
        self.accounts.settle(engine.balances)
        books = engine.books
        self.marketdata.settle({name: (book.bids.depth(), book.asks.depth()) for name, book in books.items()})

    # -- snapshots --------------------------------------------------------------------------------

    def to_state(self) -> bytes:
        """Everything needed to continue exactly from here (call it right after a batch)."""
        return _state_encoder.encode(
            _State(
                format=STATE_FORMAT,
                ts=self.ts,
                count=self.count,
                engine=engine_snapshot.dump(self.engine.as_pure()),
                marketdata=self.marketdata.to_state(),
                accounts=self.accounts.to_state(),
            )
        )

    def snapshot_state(self) -> bytes:
        """:meth:`to_state` as a snapshot stores it, compressed (``snapshots.pack_state``)."""
        return pack_state(self.to_state())

    def snapshot_ops(self, pos: bytes) -> list[Op]:
        """The ``HSET`` of ``tw:{0}:snapshot`` for the state now, covering the commands up to ``pos``."""
        return snapshot_ops(pos, self.ts, self.snapshot_state())

    @classmethod
    def from_state(cls, config: ExchangeConfig, data: bytes) -> Core:
        """A core that continues as the one whose :meth:`to_state` gave ``data``.

        Raises ``ValueError`` (``SnapshotError``) for bytes of another format or another config.
        Takes a snapshot's stored bytes too (:meth:`snapshot_state`).
        """
        try:
            state = _state_decoder.decode(unpack_state(data))
        except (msgspec.DecodeError, zlib.error) as exc:
            raise engine_snapshot.SnapshotError(f"not a service snapshot: {exc}") from exc
        if state.format != STATE_FORMAT:
            raise engine_snapshot.SnapshotError(
                f"service snapshot format {state.format}, this engine reads {STATE_FORMAT}"
            )
        return cls(
            config,
            engine=fastest_from(engine_snapshot.load(state.engine, config)),
            marketdata=MarketData.from_state(config, state.marketdata),
            accounts=Accounts.from_state(config, state.accounts),
            ts=state.ts,
            count=state.count,
        )


def _publications(md_ops: Sequence[Op], epoch: bytes) -> list[Op]:
    """The market-data ops with each market's ``MDPUB`` publications as one script call, after the
    cache writes (the whole batch is one transaction, so nobody sees the writes in between).

    Publications keep their order within each market, and the markets their order of first
    appearance; consecutive publications on one stream (a batch's trades) share one run."""
    out: list[Op] = []
    markets: dict[str, list[tuple[str, list[bytes | str]]]] = {}
    for op in md_ops:
        if op[0] != keys.MDPUB:
            out.append(op)
            continue
        market, stream = str(op[1]), str(op[2])
        runs = markets.get(market)
        if runs is None:
            runs = markets[market] = []
        if runs and runs[-1][0] == stream:
            runs[-1][1].append(op[3])  # type: ignore[arg-type]
        else:
            runs.append((stream, [op[3]]))  # type: ignore[list-item]
    for market, runs in markets.items():
        out.append(publish_market_op(market, runs, epoch))
    return out
