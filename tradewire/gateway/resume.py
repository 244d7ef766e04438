"""Resuming a stream after a reconnect: what a client that saw update ``since`` has missed.

A client that reconnects tells the last id it saw (``?since=<u>`` on the URL, or
``"since": {"btcusdt@depth": <u>}`` in a ``SUBSCRIBE``): for ``@depth`` the ``u`` of its last diff,
for ``@trade`` its last trade id ``t``. The channel's history (``md:{M}:<stream>:history``, the last
couple of thousand publications) either still holds everything after that id, and the client gets
exactly those messages and then the live ones, or it does not (the client was away too long, or
names an id the exchange never reached), and the client is told to resnapshot. Pure.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import orjson

from tradewire.bus.subscribe import Publication


@dataclass
class ResumePlan:
    messages: list[bytes] = field(default_factory=list)
    """Payloads to send, oldest first."""
    last_offset: int = 0
    """The newest channel offset the history covered: live messages up to it are duplicates."""
    resnapshot: bool = False
    too_old: bool = False


def resume_plan(history: list[tuple[int, Publication]], since: int, key: str) -> ResumePlan:
    """What to send a client that saw ``since`` (the value of field ``key``: ``u`` or ``t``)."""
    plan = ResumePlan()
    if not history:
        plan.resnapshot = True
        return plan
    plan.last_offset = history[-1][0]
    decoded = [orjson.loads(publication.payload) for _, publication in history]
    first = decoded[0]
    # The id just before the oldest message the history holds.
    before_first = int(first["pu"]) if key == "u" and "pu" in first else int(first[key]) - 1
    newest = int(decoded[-1][key])
    if since < before_first:
        plan.resnapshot = plan.too_old = True
        return plan
    if since > newest:
        plan.resnapshot = True
        return plan
    for (_, publication), value in zip(history, decoded, strict=True):
        if int(value[key]) > since:
            plan.messages.append(publication.payload)
    return plan
