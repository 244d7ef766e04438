"""The events of one command as the replay spec's JSON list, straight to bytes.

Every applied command's events are published in its reply (and the reply recorded in
``tw:{0}:events``), byte for byte what ``tradewire replay`` prints:
``orjson.dumps([codec.render(e) ...])`` with :class:`tradewire.engine.EventCodec`. Building those
dicts and encoding them costs about as much as matching the command, so the service renders the
same bytes here without dicts: numbers with ``%d``, amounts from memo tables per precision, names
from a memo of their JSON strings. The unit tests hold this renderer equal to the codec over long
random streams.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import orjson

from tradewire.engine import (
    Accepted,
    Canceled,
    Deposited,
    Event,
    ExchangeConfig,
    Expired,
    Rejected,
    Trade,
    Withdrawn,
)
from tradewire.engine.decimals import to_text
from tradewire.journal.entries import CommandEntry, reply_payload

try:
    from tradewire.journal._reply import ReplyRenderer
except ImportError:  # not built (no C compiler at install): replies are rendered in Python
    ReplyRenderer = None  # type: ignore[assignment,misc]

RenderReply = Callable[[CommandEntry, Sequence[Event]], bytes]

LIMIT = 1 << 16
"""Entries a memo table holds before it starts over (a memo never changes the output)."""


class _Amounts(dict[int, bytes]):
    """``amounts[units]`` is the JSON string of ``to_text(units, precision)``, quotes included."""

    __slots__ = ("precision",)

    def __init__(self, precision: int) -> None:
        super().__init__()
        self.precision = precision

    def __missing__(self, units: int) -> bytes:
        if len(self) >= LIMIT:
            self.clear()
        text = self[units] = b'"' + to_text(units, self.precision).encode() + b'"'
        return text


class _Strings(dict[str, bytes]):
    """``strings[s]`` is ``orjson.dumps(s)``."""

    def __missing__(self, value: str) -> bytes:
        if len(self) >= LIMIT:
            self.clear()
        text = self[value] = orjson.dumps(value)
        return text


class EventsRenderer:
    """Renders a command's events as the spec's JSON list, identical to ``EventCodec`` + orjson."""

    def __init__(self, config: ExchangeConfig) -> None:
        tables: dict[int, _Amounts] = {}

        def table(precision: int) -> _Amounts:
            return tables.setdefault(precision, _Amounts(precision))

        self._assets = {name: table(asset.precision) for name, asset in config.assets.items()}
        self._markets = {
            name: (table(m.base.precision), table(m.quote.precision)) for name, m in config.markets.items()
        }
        self._strings = _Strings()
        self._render: dict[type[Any], Callable[[Any], bytes]] = {
            Accepted: self._accepted,
            Rejected: self._rejected,
            Trade: self._trade,
            Canceled: self._canceled,
            Expired: self._expired,
            Deposited: self._transfer,
            Withdrawn: self._transfer,
        }

    def render(self, events: Sequence[Event]) -> bytes:
        render = self._render
        if len(events) == 1:
            event = events[0]
            return b"[" + render[type(event)](event) + b"]"
        return b"[" + b",".join([render[type(event)](event) for event in events]) + b"]"

    def _accepted(self, e: Accepted) -> bytes:
        s = self._strings
        out = b'{"type":"accepted","order_id":%d,"user":%s,"market":%s' % (e.order_id, s[e.user], s[e.market])
        if e.client_id is not None:
            return out + b',"client_id":' + s[e.client_id] + b"}"
        return out + b"}"

    def _rejected(self, e: Rejected) -> bytes:
        s = self._strings
        out = b'{"type":"rejected"'
        if e.order_id is not None:
            out += b',"order_id":%d' % e.order_id
        if e.user is not None:
            out += b',"user":' + s[e.user]
        return out + b',"reason":' + s[e.reason] + b"}"

    def _trade(self, e: Trade) -> bytes:
        s = self._strings
        base, quote = self._markets[e.market]
        maker_fee, taker_fee = (quote, base) if e.taker_side == "buy" else (base, quote)
        return b"".join(
            (
                b'{"type":"trade","market":',
                s[e.market],
                b',"trade_id":%d,"price":%s,"qty":%s,"maker_order_id":%d,"taker_order_id":%d'
                % (e.trade_id, quote[e.price], base[e.qty], e.maker_order_id, e.taker_order_id),
                b',"maker_user":',
                s[e.maker_user],
                b',"taker_user":',
                s[e.taker_user],
                b',"taker_side":',
                s[e.taker_side],
                b',"maker_fee":',
                maker_fee[e.maker_fee],
                b',"taker_fee":',
                taker_fee[e.taker_fee],
                b"}",
            )
        )

    def _canceled(self, e: Canceled) -> bytes:
        return b'{"type":"canceled","order_id":%d,"reason":%s}' % (e.order_id, self._strings[e.reason])

    def _expired(self, e: Expired) -> bytes:
        base, quote = self._markets[e.market]
        if e.remaining_quote_qty is not None:
            return b'{"type":"expired","order_id":%d,"remaining_quote_qty":%s}' % (
                e.order_id,
                quote[e.remaining_quote_qty],
            )
        return b'{"type":"expired","order_id":%d,"remaining_qty":%s}' % (
            e.order_id,
            base[e.remaining_qty or 0],
        )

    def _transfer(self, e: Deposited | Withdrawn) -> bytes:
        s = self._strings
        kind = b"deposit" if type(e) is Deposited else b"withdraw"
        return b'{"type":"%s","user":%s,"asset":%s,"amount":%s}' % (
            kind,
            s[e.user],
            s[e.asset],
            self._assets[e.asset][e.amount],
        )


def reply_renderer(config: ExchangeConfig, render: Callable[[Sequence[Event]], bytes]) -> RenderReply:
    """``reply(entry, events)``: the command's reply message, ``reply_payload(entry, render(events))``
    with ``render`` an :meth:`EventsRenderer.render` of ``config``, in C when built (``_reply.pyx``,
    about a fifth of the service's instructions per command in Python), else in Python; the Python
    functions render whatever the C one does not take."""

    def in_python(entry: CommandEntry, events: Sequence[Event]) -> bytes:
        return reply_payload(entry, render(events))

    return in_python if ReplyRenderer is None else ReplyRenderer(config, in_python)
