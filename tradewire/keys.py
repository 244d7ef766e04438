"""Every Redis key and Pub/Sub channel tradewire uses, in one place.

The engine service writes them, gateways and operator commands read them; keeping the names here is
what lets several gateways (and later Redis Cluster) agree on the layout without talking to each
other. Market keys carry the market in a hash tag (``{BTC-USDT}``) so that Cluster keeps one market's
cache, history and channels on one shard. ``docs/internals.md`` describes what each key holds.
"""

from __future__ import annotations

from typing import Final

PREFIX: Final = "tw"

# -- the journal (engine shard ``0``; one shard owns the whole ledger) --------------------------
COMMANDS: Final = "tw:{0}:commands"
"""Stream: the command journal. Fields ``c`` (command JSON), ``ts``, ``rid``, ``src``, ``who``, ``ip``."""
EVENTS: Final = "tw:{0}:events"
"""Stream: one entry per applied command. Fields ``cmd``, ``ts``, ``rid``, ``e`` (JSON list of events)."""
APPLIED: Final = "tw:{0}:applied"
"""String: the id of the last command entry whose events are in ``EVENTS`` (written with them)."""
SNAPSHOT: Final = "tw:{0}:snapshot"
"""Hash: ``pos`` (command id covered), ``at`` (exchange ms), ``state`` (bytes)."""
ARCHIVED: Final = "tw:{0}:archived"
"""String: the last command entry moved out of Redis into journal segments (``tradewire journal
archive``); the journal and the events stream in Redis start after it."""
ARCHIVED_ENTRIES: Final = "tw:{0}:archived:entries"
"""String: how many command entries were archived out of Redis, in all (counted in the transaction
that moves ``ARCHIVED``): the engine's journal lag is ``XLEN`` plus these, minus what it applied."""
CONFIG: Final = "tw:config"
"""String: the exchange config JSON the engine runs with; gateways read markets from it."""
ENGINE_HEARTBEAT: Final = "tw:{0}:engine:heartbeat"
"""String with TTL: set by a live engine (its pid and last position), for readiness checks."""
ENGINE_LEASE: Final = "tw:{0}:engine:lease"
"""String with a TTL of a few seconds: the engine allowed to apply commands, as JSON ``{"term",
"token", "host", "pid", "since"}``; renewed while it runs, deleted on a clean stop
(``tradewire/journal/lease.py``). Another engine waits as a standby until it is gone."""
ENGINE_TERM: Final = "tw:{0}:engine:term"
"""Counter: incremented by every engine that takes the lease. The engine watches it (``WATCH``) in
front of each of its transactions, so that once another engine has taken over, no transaction of
the one before commits: the fence."""


def reply_channel(source: str) -> str:
    """Pub/Sub channel on which the submitter ``source`` (a gateway instance, an admin) gets outcomes."""
    return f"tw:reply:{source}"


# -- accounts: the views the engine keeps for order queries and balances ------------------------
def balances(user: str) -> str:
    """Hash: asset -> ``{"free": "...", "locked": "..."}``."""
    return f"tw:bal:{user}"


def orders(user: str) -> str:
    """Hash: order id -> Binance-shaped order record JSON."""
    return f"tw:orders:{user}"


def open_orders(user: str) -> str:
    """Sorted set: ids of the user's open orders, scored by order id."""
    return f"tw:open:{user}"


def client_ids(user: str) -> str:
    """Hash: client order id -> order id of its latest order."""
    return f"tw:cid:{user}"


def closed_orders(user: str) -> str:
    """Sorted set: the user's closed orders still kept, scored by id, as ``"<id> <symbol> <client
    id>"``: what ``allOrders`` pages through (with ``tw:open:<user>``), and what the trimming of the
    history removes, oldest first (``tradewire/accounts/history.py``)."""
    return f"tw:closed:{user}"


def user_trades(user: str, symbol: str) -> str:
    """Stream (capped): the user's fills in one market (Binance symbol), Binance ``myTrades`` shape,
    one JSON per entry (field ``t``), entry id ``<trade id>-0`` (``-1`` for the second side of a
    self-trade): ``myTrades`` reads from a trade id or the newest ones without scanning the rest."""
    return f"tw:mytrades:{user}:{symbol}"


def user_channel(user: str) -> str:
    """Pub/Sub: the user's ``executionReport`` / ``outboundAccountPosition`` payloads."""
    return f"tw:user:{user}"


# -- users and API keys (written by ``tradewire admin``, read by gateways) ---------------------------
USERS: Final = "tw:users"
"""Hash: user name -> JSON ``{"created": ms}``."""


def api_key(key: str) -> str:
    """Hash: ``user``, ``secret`` (encrypted), ``created``, ``permissions``."""
    return f"tw:apikey:{key}"


def listen_key(key: str) -> str:
    """String with a TTL of 60 minutes: ``"<user> <API key that created it>"``, or ``-`` once closed
    (``tradewire.gateway.sessions``)."""
    return f"tw:listenkey:{key}"


def listen_key_of(api_key_: str) -> str:
    """String with the listen key's TTL: the live listen key this API key created, which ``POST
    userDataStream`` hands out again (Binance: one active listen key per account)."""
    return f"tw:listenkeyof:{api_key_}"


LISTENERS_VERSION: Final = "tw:listeners:version"
"""Counter: bumped by a gateway whenever it starts or stops following a user's data channel, before
it acknowledges the stream; the engine re-reads who listens only when it moved (``PUBSUB CHANNELS``
costs time in proportion to every channel subscribed: 1 ms at 10,000)."""
SESSIONS: Final = "tw:sessions"
"""Pub/Sub: sessions to end now, one JSON object per message (``tradewire.gateway.sessions``):
an API key revoked, a listen key closed. Every gateway follows it."""


# -- market data: cache and channels, hash-tagged by market ----------------------------------------
def md(market: str, stream: str) -> str:
    """A market-data key or channel: ``md:{BTC-USDT}:depth``, ``md:{BTC-USDT}:kline_1m``, ..."""
    return f"md:{{{market}}}:{stream}"


def md_history(market: str, stream: str) -> str:
    """Stream (capped): the recent publications of one channel, entry id ``<offset>-0``."""
    return f"md:{{{market}}}:{stream}:history"


def md_meta(market: str, stream: str) -> str:
    """Hash: ``offset`` (last published) and ``epoch`` of one channel."""
    return f"md:{{{market}}}:{stream}:meta"


# -- what pure builders hand to the shell -------------------------------------------------------------
RedisOp = tuple[str | bytes | int, ...]
"""One Redis command a pure builder wants run, e.g. ``("HSET", key, field, value)``.

Builders (market data, accounts) return lists of these; the engine service appends them, in order, to
the batch's MULTI/EXEC pipeline (``pipe.execute_command(*op)``). One pseudo-command is not Redis's own:
``("MDPUB", market, stream, payload)`` is a market-data publication, which the shell runs through the
bus script (offset, epoch, history, PUBLISH). A plain ``PUBLISH`` is used for reply and user channels,
which have no history.
"""

MDPUB: Final = "MDPUB"
