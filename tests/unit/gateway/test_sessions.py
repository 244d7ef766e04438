"""Session notices (pure) and what the guard does with them to the connections it is given."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from tradewire.gateway.sessions import Notice, SessionGuard, closed_notice, parse_notice, revoked_notice


class FakeKeyCache:
    def __init__(self) -> None:
        self.forgotten: list[str] = []

    def forget(self, key: str) -> None:
        self.forgotten.append(key)


class FakeConnection:
    def __init__(self, listen_key: str | None, subscriptions: dict[int, str]) -> None:
        self.listen_key = listen_key
        self.subscriptions = subscriptions
        self.ended: list[tuple[bytes | None, str]] = []
        self.terminated: list[tuple[int, bytes]] = []

    def subscription_keys(self) -> set[str]:
        return set(self.subscriptions.values())

    def end_user_stream(self, event: bytes | None, reason: str) -> None:
        self.ended.append((event, reason))
        self.listen_key = None

    def end_subscriptions(self, api_key: str, event: bytes) -> int:
        ended = [n for n, key in self.subscriptions.items() if key == api_key]
        for n in ended:
            self.terminated.append((n, event))
            del self.subscriptions[n]
        return len(ended)


def test_notices_round_trip() -> None:
    assert parse_notice(revoked_notice("k1", ["a", "b"])) == Notice("k1", ("a", "b"), expired=False)
    assert parse_notice(closed_notice("a")) == Notice(None, ("a",), expired=False)


@pytest.mark.parametrize(
    "payload",
    [b"", b"not json", b"[]", b'{"type":"api_key_revoked"}', b'{"type":"api_key_revoked","api_key":""}',
     b'{"type":"listen_key_closed","listen_keys":"a"}', b'{"type":"listen_key_closed","listen_keys":[1]}',
     b'{"type":"something_else","listen_keys":[]}'],
)  # fmt: skip
def test_anything_else_is_not_a_notice(payload: bytes) -> None:
    assert parse_notice(payload) is None


def guard_of(*conns: FakeConnection) -> tuple[SessionGuard, FakeKeyCache]:
    cache = FakeKeyCache()
    return SessionGuard(None, cache, list(conns)), cache  # type: ignore[arg-type]


def test_a_revoked_key_ends_its_listen_keys_and_subscriptions_only() -> None:
    revoked_stream = FakeConnection("lk1", {})
    other_stream = FakeConnection("lk2", {})
    api = FakeConnection(None, {0: "k1", 1: "k2"})
    guard, cache = guard_of(revoked_stream, other_stream, api)
    assert guard.apply(Notice("k1", ("lk1",), expired=False)) == 2
    assert cache.forgotten == ["k1"]
    assert revoked_stream.ended == [(None, "API key revoked")] and other_stream.ended == []
    assert [n for n, _ in api.terminated] == [0] and api.subscriptions == {1: "k2"}
    event: dict[str, Any] = orjson.loads(api.terminated[0][1])
    assert event["e"] == "eventStreamTerminated" and isinstance(event["E"], int)


def test_expired_listen_keys_get_listen_key_expired_and_closed_ones_nothing() -> None:
    expiring, closing = FakeConnection("lk1", {}), FakeConnection("lk2", {})
    guard, cache = guard_of(expiring, closing)
    guard.apply(Notice(None, ("lk1",), expired=True))
    guard.apply(Notice(None, ("lk2",), expired=False))
    ((event, reason),) = expiring.ended
    assert reason == "listen key expired" and event is not None
    assert orjson.loads(event)["e"] == "listenKeyExpired" and orjson.loads(event)["listenKey"] == "lk1"
    assert closing.ended == [(None, "listen key closed")] and cache.forgotten == []


def test_a_malformed_message_ends_nothing() -> None:
    conn = FakeConnection("lk1", {0: "k1"})
    guard, cache = guard_of(conn)
    guard.on_message(b'{"type":"api_key_revoked"}')
    assert conn.ended == [] and conn.terminated == [] and cache.forgotten == []
