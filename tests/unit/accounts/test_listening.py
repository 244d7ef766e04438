"""The listeners filter: user-data payloads only for users whose stream is open, the cache for everyone."""

from __future__ import annotations

from collections import Counter

from tests.strategies import random_stream
from tests.unit.accounts.harness import CONFIG, Cache, Exchange
from tradewire.accounts import Accounts
from tradewire.engine import decode
from tradewire.keys import RedisOp

BATCH = 7


def run(lines: list[str], listening: list[frozenset[str] | None]) -> tuple[list[list[RedisOp]], list[Cache]]:
    """Each batch's ops, and the cache after it; ``listening[k]`` is the set during batch ``k``."""
    ex = Exchange()
    batches: list[list[RedisOp]] = []
    caches: list[Cache] = []
    cache = Cache()
    for start in range(0, len(lines), BATCH):
        ex.accounts.listening(listening[len(batches)])
        for line in lines[start : start + BATCH]:
            ex.apply(line)
        ops = ex.accounts.flush()
        cache.run(ops)
        batches.append(ops)
        caches.append(_copy(cache))
    return batches, caches


def _copy(cache: Cache) -> Cache:
    copy = Cache()
    copy.hashes = {key: dict(fields) for key, fields in cache.hashes.items()}
    copy.sets = {key: set(members) for key, members in cache.sets.items()}
    copy.zsets = {key: set(members) for key, members in cache.zsets.items()}
    copy.streams = {key: list(entries) for key, entries in cache.streams.items()}
    return copy


def publications(ops: list[RedisOp], user: str | None = None) -> list[RedisOp]:
    return [op for op in ops if op[0] == "PUBLISH" and (user is None or op[1] == f"tw:user:{user}")]


def most_active(lines: list[str]) -> str:
    users = Counter(str(getattr(decode(line), "user", "")) for line in lines)
    return users.most_common(1)[0][0]


LINES = random_stream(11, 1400)
BATCHES = -(-len(LINES) // BATCH)


def test_views_with_nobody_listening_publish_nothing_and_leave_the_same_cache_after_every_batch() -> None:
    everyone, everyone_caches = run(LINES, [None] * BATCHES)
    nobody, nobody_caches = run(LINES, [frozenset()] * BATCHES)
    assert sum(len(str(op[2]).split("\n")) for ops in everyone for op in publications(ops)) > 1000
    assert not any(publications(ops) for ops in nobody)
    for a, b in zip(everyone_caches, nobody_caches, strict=True):
        assert a.hashes == b.hashes
        assert a.sets == b.sets
        assert a.zsets == b.zsets
        assert a.streams == b.streams
    written = {
        str(op[3] if op[0] == "EVALSHA" else op[1]).split(":")[1]
        for ops in nobody
        for op in ops
        if op[0] != "SCRIPT"
    }
    assert written == {"bal", "orders", "open", "cid", "mytrades", "closed"}


def test_views_with_one_listener_publish_only_on_its_channel_the_same_bytes_as_for_everyone() -> None:
    alice = most_active(LINES)
    everyone, everyone_caches = run(LINES, [None] * BATCHES)
    alone, alone_caches = run(LINES, [frozenset({alice})] * BATCHES)
    assert all(op[1] == f"tw:user:{alice}" for ops in alone for op in publications(ops))
    for a, b in zip(everyone, alone, strict=True):
        assert publications(b) == publications(a, alice)
    assert sum(len(str(op[2]).split("\n")) for ops in alone for op in publications(ops)) > 100
    assert everyone_caches[-1].hashes == alone_caches[-1].hashes


def test_views_with_a_user_who_starts_listening_publish_from_then_on_what_everyone_would_get() -> None:
    alice = most_active(LINES)
    half = BATCHES // 2
    everyone, _ = run(LINES, [None] * BATCHES)
    late, _ = run(LINES, [frozenset()] * half + [frozenset({alice, "nobody-here"})] * (BATCHES - half))
    assert not any(publications(ops) for ops in late[:half])
    assert [publications(ops) for ops in late[half:]] == [publications(ops, alice) for ops in everyone[half:]]
    assert any(publications(ops) for ops in late[half:])


def test_views_with_nobody_listening_and_restored_mid_batch_continue_exactly_as_the_original() -> None:
    lines = random_stream(13, 1200)
    original = Exchange()
    original.accounts.listening(frozenset())
    for line in lines[:601]:
        original.apply(line)
    state = original.accounts.to_state()
    restored = Accounts.from_state(CONFIG, state)
    restored.listening(frozenset())
    assert restored.to_state() == state
    ops_a: list[RedisOp] = []
    ops_b: list[RedisOp] = []
    for number, line in enumerate(lines[601:]):
        original.apply(line)
        restored.apply(decode(line), original.events, original.ts, original.balance_of)
        if number % 5 == 0:
            ops_a += original.accounts.flush()
            ops_b += restored.flush()
    assert ops_a + original.accounts.flush() == ops_b + restored.flush()
    assert any(op[1].startswith("tw:bal:") for op in ops_a if isinstance(op[1], str))
