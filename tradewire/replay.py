"""The batch interface: a journal of JSON commands in, JSON events and the final state out.

It is the engine with the thinnest possible shell, so that anyone can re-run a journal offline and
get the same trades, rejections, balances and books byte for byte.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import orjson

from tradewire.engine import Engine, EventCodec, ExchangeConfig, decode


def replay_lines(config: ExchangeConfig, lines: Iterable[bytes | str]) -> Iterator[bytes]:
    """Yield one JSON line (without newline) per event, then the ``state`` line."""
    engine = Engine(config)
    codec = EventCodec(config)
    render, dumps, apply = codec.render, orjson.dumps, engine.apply
    for line in lines:
        for event in apply(decode(line)):
            yield dumps(render(event))
    yield dumps(codec.state(engine))
