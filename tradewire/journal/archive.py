"""Journal archives: the journal's old entries moved out of Redis into files, and read back.

Why: the command journal and the events stream are the exchange's record, and Redis holds them in
memory, about 180 bytes per command entry plus its events entry: a gigabyte every million or so
commands, growing for ever. Recovery needs only the newest snapshot and the entries after it; the
audit needs all of them. So ``tradewire journal archive DIR`` (run by the operator, from cron, on a
host whose disk is backed up) writes the entries before the snapshot's position to a *segment* file,
makes it durable, reads it back, and only then removes them from Redis, in one transaction that also
records the last archived entry in ``tw:{0}:archived``:

- the engine refuses to recover from a Redis whose archived mark no snapshot covers (a lost snapshot
  would otherwise replay the tail from an empty state: wrong balances, silently);
- ``tradewire audit verify --archive DIR`` (and ``export``) replay the segments, then Redis;
- the snapshot's own entry stays in Redis: the engine checks that the last entry it committed is
  still there to tell a Redis that lost data from one that did not.

A segment is a gzip file of JSON lines. The first line is a header: ``{"format":
"tradewire-journal-segment", "version": 1, "first": ID, "last": ID, "entries": N, "previous": ID or
null}`` (``previous``: the last entry of the segment before, so a missing file shows); then one line
per command entry, ``{"id": ID, "c": {fields}, "e": {fields}}``, with the command entry's fields and
the command's outcome as ``tradewire.journal.streams.iter_events`` gives it (``cmd``, ``ts``, ``rid``,
``e``). A field value is a JSON string when it is UTF-8, else
``{"b64": "..."}``: the journal holds whatever bytes a writer sent, and the audit replays them as the
engine read them.
"""

from __future__ import annotations

import base64
import fcntl
import gzip
import os
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import orjson
import redis
import redis.exceptions

from tradewire import keys
from tradewire.engine import ConfigError, ExchangeConfig
from tradewire.journal.core import Core
from tradewire.journal.streams import entries, id_order, iter_events

FORMAT = "tradewire-journal-segment"
VERSION = 1
SUFFIX = ".jsonl.gz"

Fields = dict[bytes, bytes]
ArchivedEntry = tuple[bytes, Fields, Fields]
"""``(entry id, command entry fields, events entry fields)``."""


class ArchiveError(RuntimeError):
    """A segment is missing, damaged or out of order, or Redis is not in a state to archive from."""


@dataclass(frozen=True)
class Segment:
    path: Path
    first: bytes
    last: bytes
    entries: int
    previous: bytes | None


def _value(raw: bytes) -> str | dict[str, str]:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return {"b64": base64.b64encode(raw).decode("ascii")}


def _raw(value: Any) -> bytes:
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, dict) and isinstance(value.get("b64"), str):
        return base64.b64decode(value["b64"], validate=True)
    raise ArchiveError(f"not a field value: {value!r}")


def encode_fields(fields: Fields) -> dict[str, Any]:
    return {name.decode("utf-8", "replace"): _value(value) for name, value in fields.items()}


def decode_fields(fields: Any) -> Fields:
    if not isinstance(fields, dict):
        raise ArchiveError(f"not a set of fields: {fields!r}")
    return {name.encode("utf-8"): _raw(value) for name, value in fields.items()}


def segment_name(first: bytes, last: bytes) -> str:
    return f"journal-{first.decode()}--{last.decode()}{SUFFIX}"


def write_segment(directory: Path, entries: list[ArchivedEntry], previous: bytes | None) -> Segment:
    """Write ``entries`` (in journal order, at least one) as a segment, durably: a temporary file,
    fsynced, renamed, the directory fsynced; then read back whole. Returns the segment."""
    if not entries:
        raise ValueError("a segment holds at least one entry")
    directory.mkdir(parents=True, exist_ok=True)
    first, last = entries[0][0], entries[-1][0]
    path = directory / segment_name(first, last)
    if path.exists():
        raise ArchiveError(f"{path} exists already")
    header = {
        "format": FORMAT,
        "version": VERSION,
        "first": first.decode(),
        "last": last.decode(),
        "entries": len(entries),
        "previous": None if previous is None else previous.decode(),
    }
    temporary = directory / f".{path.name}.partial"
    with temporary.open("wb") as raw:
        with gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as out:
            out.write(orjson.dumps(header) + b"\n")
            for entry_id, command, events in entries:
                line = {"id": entry_id.decode(), "c": encode_fields(command), "e": encode_fields(events)}
                out.write(orjson.dumps(line) + b"\n")
        raw.flush()
        os.fsync(raw.fileno())
    temporary.rename(path)
    _fsync_directory(directory)
    segment = read_header(path)
    if sum(1 for _ in read_segment(segment)) != len(entries):
        raise ArchiveError(f"{path}: read back, it does not hold the {len(entries)} entries written")
    return segment


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_header(path: Path) -> Segment:
    try:
        with gzip.open(path, "rb") as data:
            header = orjson.loads(data.readline())
    except (OSError, EOFError, orjson.JSONDecodeError) as exc:
        raise ArchiveError(f"{path}: not a journal segment ({exc})") from exc
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise ArchiveError(f"{path}: not a journal segment (no {FORMAT} header)")
    if header.get("version") != VERSION:
        raise ArchiveError(
            f"{path}: segment version {header.get('version')!r}, this tradewire reads {VERSION}"
        )
    try:
        previous = header["previous"]
        return Segment(
            path,
            header["first"].encode(),
            header["last"].encode(),
            int(header["entries"]),
            None if previous is None else previous.encode(),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ArchiveError(f"{path}: malformed segment header {header!r}") from exc


def read_segment(segment: Segment) -> Iterator[ArchivedEntry]:
    """The entries of one segment, checked against its header (count, first and last ids, order)."""
    count = 0
    last: bytes | None = None
    try:
        with gzip.open(segment.path, "rb") as data:
            data.readline()
            for line in data:
                item = orjson.loads(line)
                entry_id = item["id"].encode()
                if last is not None and id_order(entry_id) <= id_order(last):
                    raise ArchiveError(f"{segment.path}: entry {entry_id.decode()} out of order")
                if last is None and entry_id != segment.first:
                    raise ArchiveError(
                        f"{segment.path}: starts at {entry_id.decode()}, not {segment.first.decode()}"
                    )
                yield entry_id, decode_fields(item["c"]), decode_fields(item["e"])
                last = entry_id
                count += 1
    except (
        OSError,
        EOFError,
        orjson.JSONDecodeError,
        KeyError,
        TypeError,
        AttributeError,
        ValueError,
    ) as exc:
        raise ArchiveError(f"{segment.path}: damaged after {count} entries ({exc})") from exc
    if count != segment.entries or last != segment.last:
        raise ArchiveError(
            f"{segment.path}: holds {count} entries up to {last.decode() if last else '-'}, "
            f"its header says {segment.entries} up to {segment.last.decode()}"
        )


def segments(directory: Path) -> list[Segment]:
    """The segments in ``directory``, oldest first, checked to follow one another from the journal's
    first entry without a gap (each names the last entry of the one before)."""
    if not directory.is_dir():
        raise ArchiveError(f"{directory}: no such directory")
    found = sorted(
        (read_header(path) for path in directory.glob(f"journal-*{SUFFIX}")), key=lambda s: id_order(s.first)
    )
    previous: bytes | None = None
    for segment in found:
        if segment.previous != previous:
            expected = "the journal's first entry" if previous is None else f"after {previous.decode()}"
            raise ArchiveError(
                f"{segment.path}: follows {segment.previous.decode() if segment.previous else 'nothing'}, "
                f"expected {expected}: a segment is missing"
            )
        previous = segment.last
    return found


def up_to(found: list[Segment], mark: bytes | None) -> tuple[list[Segment], list[Segment]]:
    """Split ``found`` at Redis's archived ``mark``: the segments whose entries left Redis, and those
    past it, written by an archive run that stopped before its transaction (its entries are still
    in Redis: such a segment is only a leftover)."""
    if mark is None:
        return [], found
    key = id_order(mark)
    kept = [segment for segment in found if id_order(segment.last) <= key]
    return kept, found[len(kept) :]


def read_archive(found: Iterable[Segment]) -> Iterator[ArchivedEntry]:
    for segment in found:
        yield from read_segment(segment)


# -- the shell: from Redis to a segment ---------------------------------------------------------------

PAGE = 10_000
LOCK = ".lock"
"""Held (``flock``) by the run archiving into the directory."""
DEFAULT_DIRECTORY = "journal-archive"
"""Under the data directory: where ``tradewire up`` archives, and where the audit looks by default."""
KEEP_SECONDS = 600.0
"""Entries journalled in the last this many seconds (by their ids, Redis's clock) stay in Redis:
a gateway or ``tradewire admin`` that missed the engine's reply looks its outcome up in the events
stream, and an outcome gone from it reads as none (an operator would submit a deposit again)."""
SEGMENT_ENTRIES = 200_000
"""Entries per segment file: what one archive run holds in memory at a time (a few hundred MB at most)."""


def archive_journal(
    client: redis.Redis, directory: Path, keep_seconds: float = KEEP_SECONDS
) -> dict[str, Any]:
    """Move the entries before the snapshot's position from Redis into a new segment in
    ``directory``; what was done, as a JSON-able dict. Raises :class:`ArchiveError` when there is
    nothing safe to archive from (no snapshot, one this tradewire cannot load, a record with a
    command but no events entry) or another archive ran meanwhile; Redis is then untouched."""
    if directory.exists() and not directory.is_dir():
        raise ArchiveError(f"{directory} is not a directory")
    directory.mkdir(parents=True, exist_ok=True)
    with (directory / LOCK).open("a") as lock:
        try:  # two runs at once (a slow one and the next from cron) would share temporary files
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise ArchiveError(f"another archive is running on {directory}") from exc
        return _archive_locked(client, directory, keep_seconds)


def _archive_locked(client: redis.Redis, directory: Path, keep_seconds: float) -> dict[str, Any]:
    found = segments(directory)
    with client.pipeline(transaction=True) as pipe:
        pipe.watch(keys.ARCHIVED)  # type: ignore[no-untyped-call]
        marker = cast(bytes | None, pipe.get(keys.ARCHIVED))  # the client answers bytes
        pos = cast(bytes | None, pipe.hget(keys.SNAPSHOT, "pos"))
        state = cast(bytes | None, pipe.hget(keys.SNAPSHOT, "state"))
        config_json = cast(bytes | None, pipe.get(keys.CONFIG))
        found, leftovers = up_to(found, marker)
        for segment in leftovers:  # a run that died before its transaction: Redis kept the entries
            _check_in_redis(pipe, segment)
        for segment in leftovers:
            segment.path.unlink()
        tail = found[-1].last if found else None
        if marker != tail:
            raise ArchiveError(
                f"Redis says the journal is archived up to {marker.decode() if marker else 'nothing'}, "
                f"the segments in {directory} end at {tail.decode() if tail else 'nothing'}: "
                "archive into the directory that holds the earlier segments"
            )
        if pos is None or state is None:
            raise ArchiveError(
                f"no snapshot in {keys.SNAPSHOT} yet: only entries a snapshot covers can leave Redis "
                "(the engine writes one every --snapshot-every commands or --snapshot-seconds)"
            )
        _check_snapshot(state, config_json)
        seconds, micros = pipe.time()
        recent = b"%d-0" % (seconds * 1000 + micros // 1000 - int(keep_seconds * 1000))
        if id_order(recent) < id_order(pos):
            pos = recent  # the newest entries stay, whatever the snapshot covers
        written: list[Segment] = []
        sent = False
        try:
            previous = marker
            while batch := _entries_before(pipe, previous, pos, SEGMENT_ENTRIES):
                written.append(write_segment(directory, batch, previous))
                previous = batch[-1][0]
            if not written:
                return {
                    "archived": 0,
                    "up_to": marker.decode() if marker else None,
                    "kept_from": pos.decode(),
                }
            pipe.multi()
            pipe.set(keys.ARCHIVED, written[-1].last)
            pipe.incrby(keys.ARCHIVED_ENTRIES, sum(segment.entries for segment in written))
            pipe.xtrim(keys.COMMANDS, minid=pos.decode(), approximate=False)
            pipe.xtrim(keys.EVENTS, minid=pos.decode(), approximate=False)
            sent = True
            pipe.execute()
        except BaseException as exc:
            # A connection lost after EXEC was sent (redis-py says WatchError then too) may hide a
            # transaction that ran: ask Redis before the segments go, and keep them when it cannot say.
            ran = _ran(client, written[-1].last) if sent else False
            if ran is None:
                raise ArchiveError(
                    f"the transaction's outcome is unknown ({exc!r}); the segments are kept: run it again"
                ) from exc
            if not ran:
                for segment in written:  # Redis still holds them all: the segments would only mislead
                    segment.path.unlink(missing_ok=True)
                if isinstance(exc, redis.exceptions.WatchError):
                    raise ArchiveError("another archive ran meanwhile: run it again") from exc
                raise
            if not isinstance(exc, redis.exceptions.RedisError):
                raise
    return {
        "archived": sum(segment.entries for segment in written),
        "first": written[0].first.decode(),
        "last": written[-1].last.decode(),
        "files": [segment.path.name for segment in written],
        "bytes": sum(segment.path.stat().st_size for segment in written),
        "kept_from": pos.decode(),
    }


def _ran(client: redis.Redis, last: bytes) -> bool | None:
    """Whether the transaction that archives up to ``last`` ran (``None``: Redis cannot say now)."""
    try:
        return client.get(keys.ARCHIVED) == last
    except redis.exceptions.RedisError:
        return None


def _check_in_redis(pipe: Any, segment: Segment) -> None:
    """Refuse to replace a segment past the archived mark unless Redis holds its entries: else it is
    the only copy of them (another exchange's, or one whose Redis started over)."""
    for entry_id in (segment.first, segment.last):
        if not pipe.xrange(keys.COMMANDS, min=entry_id, max=entry_id):
            raise ArchiveError(
                f"{segment.path} holds entry {entry_id.decode()}, which is not in Redis's journal: it "
                "is no leftover of an archive run of this Redis; move it to another directory"
            )


def _check_snapshot(state: bytes, config_json: bytes | None) -> None:
    """Refuse to archive behind a snapshot that this tradewire could not recover from."""
    if config_json is None:
        raise ArchiveError(f"no exchange config in {keys.CONFIG}: has an engine ever run here?")
    try:
        Core.from_state(ExchangeConfig.from_dict(orjson.loads(config_json)), state)
    except (ValueError, ConfigError) as exc:
        raise ArchiveError(
            f"the snapshot in {keys.SNAPSHOT} cannot be loaded ({exc}): nothing archived"
        ) from exc


def _entries_before(pipe: Any, marker: bytes | None, pos: bytes, limit: int) -> list[ArchivedEntry]:
    """Up to ``limit`` command entries after ``marker`` and before ``pos``, each with its events entry."""
    out: list[ArchivedEntry] = []
    start = b"(" + marker if marker else b"-"
    while len(out) < limit:
        page = entries(
            pipe.xrange(keys.COMMANDS, min=start, max=b"(" + pos, count=min(PAGE, limit - len(out)))
        )
        if not page:
            return out
        events = dict(iter_events(pipe, page[0][0], page[-1][0]))
        for entry_id, fields in page:
            answer = events.get(entry_id)
            if answer is None:
                raise ArchiveError(
                    f"command {entry_id.decode()} has no events entry although the snapshot covers it: "
                    "run `tradewire audit verify`; nothing archived"
                )
            out.append((entry_id, fields, answer))
        start = b"(" + page[-1][0]
    return out


def run_archive(directory: Path, data_dir: Path | None, keep_seconds: float = KEEP_SECONDS) -> None:
    """``tradewire journal archive``: one JSON line on success; a message and status 2 otherwise."""
    from tradewire.ops.logging import ADMIN_ACTION, audit_log, configure_logging
    from tradewire.redisconn import RedisConnectError, connect_sync, verify_connection_sync
    from tradewire.runtime import RuntimeSetupError, find_redis

    configure_logging("admin")
    try:
        url, _ = find_redis(data_dir)
        client = connect_sync(url)
        try:
            verify_connection_sync(client, url)  # before the directory is made: nothing to clean up
            done = archive_journal(client, directory, keep_seconds)
        finally:
            client.close()
    except (ArchiveError, RuntimeSetupError, RedisConnectError, redis.exceptions.RedisError, OSError) as exc:
        print(f"journal archive: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(2) from exc
    audit_log(
        ADMIN_ACTION,
        action="archive_journal",
        who="admin",
        **{k: v for k, v in done.items() if v is not None},
    )
    print(orjson.dumps(done).decode(), flush=True)
