"""``tradewire audit verify`` and ``tradewire audit export``: the shell around the audit's pure parts.

Both walk the journal from its first entry up to the applied mark (``tw:{0}:applied``), pairing each
command entry with the events entry that answers it, and replay the commands through a fresh engine
(``tradewire.audit.replay``). ``verify`` stops at the first divergence and exits with status 1,
or checks the final balances views and prints a summary with a digest (status 0). ``export`` writes
trades and balance changes (``tradewire.audit.export``) for a period and a user, and refuses
(status 1) when the record does not match the replay, since an export must be provably the
exchange's history. Setup problems (no Redis, no config) exit with status 2.

Entries journalled after the applied mark are not yet applied; they are counted as pending, not
checked. Commands are replayed with the exchange config stored in ``tw:config`` unless ``--config``
names one.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import cast

import orjson
import redis
import redis.exceptions
import typer

from tradewire import keys
from tradewire.audit import source
from tradewire.audit.export import FORMATS, Exporter, encoder, selected
from tradewire.audit.replay import Divergence, JournalAudit, Summary, entry_order
from tradewire.audit.source import JournalEntry
from tradewire.engine import ConfigError, Engine, Event, ExchangeConfig
from tradewire.journal.archive import DEFAULT_DIRECTORY, ArchiveError, Segment, read_archive, segments, up_to
from tradewire.journal.streams import iter_journal, replay_line
from tradewire.redisconn import RedisConnectError, connect_sync, verify_connection_sync
from tradewire.runtime import RuntimeSetupError, data_dir_or_default, find_redis, load_config

OnStep = Callable[[JournalEntry, list[Event], Engine], None]


@dataclass(frozen=True)
class Outcome:
    summary: Summary
    divergence: Divergence | None
    applied: str | None
    pending: int


def audit_journal(
    client: redis.Redis,
    config: ExchangeConfig,
    *,
    balances: bool = True,
    on_step: OnStep | None = None,
    archive: Sequence[Segment] = (),
) -> Outcome:
    """Replay the journal up to the applied mark against the record; the first divergence, if any.

    ``archive``: the segments of the entries archived out of Redis (:func:`archived_segments`),
    replayed first."""
    cut = source.balance_cut(client)
    audit = JournalAudit(config)
    archived = list(archive)
    old_commands, old_recorded = itertools.tee(read_archive(archived))
    recorded = itertools.chain(
        (source.recorded_entry(entry_id, f) for entry_id, _, f in old_recorded),
        source.recorded_events(client),
    )
    in_redis = source.journal(client, end=cut.applied) if cut.applied is not None else iter(())
    commands = itertools.chain(
        (source.journal_entry(entry_id, f) for entry_id, f, _ in old_commands), in_redis
    )
    moved = sum(segment.entries for segment in archived)
    mark = archived[-1].last.decode() if archived else None

    def outcome(divergence: Divergence | None) -> Outcome:
        if source.archived_mark(client) != mark:  # Redis's journal was cut short while being read
            raise ArchiveError(
                f"an archive ran during the audit (tw:{{0}}:archived moved past {mark or 'nothing'}): "
                "what it read of Redis may have missed entries; run it again"
            )
        summary = audit.finish()
        pending = max(source.journal_length(client) + moved - summary.entries, 0)
        return Outcome(summary, divergence, cut.applied, pending)

    for entry in commands:
        events, divergence = audit.step(entry, next(recorded, None))
        if divergence is not None:
            return outcome(divergence)
        if on_step is not None:
            on_step(entry, events, audit.engine)
    leftover = next(recorded, None)
    if leftover is not None and not _after(leftover.cmd, cut.applied):
        return outcome(audit.extra(leftover))
    if cut.applied is not None and audit.summary.last_entry != cut.applied:
        what = "the applied mark names an entry that is not the journal's last applied one"
        return outcome(Divergence(cut.applied, what, cut.applied, audit.summary.last_entry))
    if balances:
        return outcome(audit.check_balances(cut.balances, complete=not cut.moved))
    return outcome(None)


def _after(entry_id: str, applied: str | None) -> bool:
    """Whether ``entry_id`` lies beyond the applied mark (an events entry written after the cut)."""
    if applied is None:
        return False
    try:
        return entry_order(entry_id) > entry_order(applied)
    except ValueError:
        return False


# -- the commands -------------------------------------------------------------------------------------


def _fail(message: str, status: int = 2) -> typer.Exit:
    typer.echo(message, err=True)
    return typer.Exit(status)


@contextlib.contextmanager
def _exchange(config: Path | None, data_dir: Path | None) -> Iterator[tuple[redis.Redis, ExchangeConfig]]:
    """The exchange's Redis and the config its journal is replayed with; exit 2 when either is missing."""
    try:
        url, _ = find_redis(data_dir)
        client = connect_sync(url)
        verify_connection_sync(client, url)
    except (RuntimeSetupError, RedisConnectError, ValueError) as exc:
        raise _fail(f"audit: {exc}") from exc
    try:
        if config is not None:
            try:
                exchange, _ = load_config(config, names=False)
            except RuntimeSetupError as exc:
                raise _fail(f"audit: {exc}") from exc
        else:
            raw = source.stored_config(client)
            if raw is None:
                raise _fail("audit: no exchange config in Redis (tw:config); pass --config")
            try:
                exchange = ExchangeConfig.from_dict(raw)
            except ConfigError as exc:
                raise _fail(f"audit: the config stored in tw:config is not valid: {exc}") from exc
        yield client, exchange
    except redis.exceptions.RedisError as exc:
        raise _fail(f"audit: Redis failed while reading the journal: {exc}") from exc
    finally:
        client.close()


def _when(ms: int | None) -> str:
    if ms is None:
        return "-"
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def archived_segments(
    client: redis.Redis, directory: Path | None, default: Path | None = None
) -> list[Segment]:
    """The segments holding what was archived out of Redis; exit 2 when they are needed and not
    given, or do not end where Redis's journal begins. ``default``: where ``tradewire up`` archives,
    read when no directory is given and it exists."""
    mark = source.archived_mark(client)
    if directory is None and mark is not None and default is not None and default.is_dir():
        directory = default
    if directory is None:
        if mark is not None:
            raise _fail(
                f"audit: the journal up to {mark} was archived out of Redis: pass --archive DIR, the "
                "directory `tradewire journal archive` wrote its segments to (`tradewire up` archives "
                f"into <data-dir>/{DEFAULT_DIRECTORY})"
            )
        return []
    try:
        found, _ = up_to(segments(directory), None if mark is None else mark.encode())
    except ArchiveError as exc:
        raise _fail(f"audit: {exc}") from exc
    last = found[-1].last.decode() if found else None
    if last != mark:
        raise _fail(
            f"audit: the segments in {directory} end at {last or 'nothing'}, but Redis's journal "
            f"continues after {mark or 'nothing'} (tw:{{0}}:archived)"
        )
    return found


def _segments(client: redis.Redis, archive: Path | None, data_dir: Path | None) -> list[Segment]:
    """:func:`archived_segments`, looking where ``tradewire up`` archives when ``archive`` is not given."""
    return archived_segments(client, archive, data_dir_or_default(data_dir) / DEFAULT_DIRECTORY)


def _audited(
    client: redis.Redis,
    exchange: ExchangeConfig,
    archive: Path | None,
    data_dir: Path | None,
    *,
    balances: bool = True,
    on_step: OnStep | None = None,
) -> Outcome:
    found = _segments(client, archive, data_dir)
    try:
        return audit_journal(client, exchange, balances=balances, on_step=on_step, archive=found)
    except ArchiveError as exc:
        raise _fail(f"audit: {exc}") from exc


def verify(config: Path | None, data_dir: Path | None, archive: Path | None = None) -> None:
    """Prove that the journal reproduces the recorded events and balances; exit 1 at a divergence."""
    with _exchange(config, data_dir) as (client, exchange):
        result = _audited(client, exchange, archive, data_dir)
    s = result.summary
    if result.divergence is not None:
        typer.echo(result.divergence.describe())
        typer.echo(f"(entries verified before it: {s.entries}, the last one {s.last_entry or '-'})")
        raise typer.Exit(1)
    first = "-" if s.entries == 0 else f"{s.first_ts} ({_when(s.first_ts)})"
    typer.echo(f"verified: {s.entries} journal entries, up to {result.applied or '-'}")
    typer.echo(f"exchange time: {first} .. {s.last_ts if s.entries else '-'} ({_when(s.last_ts)})")
    typer.echo(f"trades: {s.trades}")
    typer.echo(f"balances: {s.users} users match the replay")
    if s.unchecked_users:
        shown = ", ".join(s.unchecked_users[:10])
        typer.echo(f"unchecked: {len(s.unchecked_users)} users appeared while reading ({shown})")
    typer.echo(f"pending: {result.pending} entries journalled after the applied mark (not checked)")
    typer.echo(f"digest: sha256:{s.digest}")


def export(
    out: Path,
    fmt: str,
    since: int | None,
    until: int | None,
    user: str | None,
    data_dir: Path | None,
    archive: Path | None = None,
) -> None:
    """Write trades and balance changes per user for ``since <= ts <= until`` as CSV or JSON lines."""
    if fmt not in FORMATS:
        raise _fail(f"--format: must be one of {', '.join(FORMATS)}, not {fmt!r}")
    if since is not None and until is not None and since > until:
        raise _fail(f"--since ({since}) is after --until ({until})")
    header, encode = encoder(fmt)
    counts = {"trade": 0, "balance": 0}
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        with _exchange(None, data_dir) as (client, exchange), tmp.open("wb") as fh:
            fh.write(header)
            exporter = Exporter(exchange)

            def write(entry: JournalEntry, events: list[Event], engine: Engine) -> None:
                for row in exporter.rows(entry, events, engine):
                    if selected(row, since, until, user):
                        counts[str(row["record"])] += 1
                        fh.write(encode(row))

            result = _audited(client, exchange, archive, data_dir, balances=False, on_step=write)
        if result.divergence is not None:
            typer.echo(result.divergence.describe(), err=True)
            raise _fail("audit export: the record does not match the journal; nothing written", 1)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise _fail(f"audit export: cannot write {out}: {exc.strerror}") from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    tmp.replace(out)
    typer.echo(f"wrote {counts['trade']} trade sides and {counts['balance']} balance changes to {out}")


def export_journal(data_dir: Path | None, archive: Path | None, config_out: Path | None) -> None:
    """``tradewire journal export``: the commands up to the applied mark, archived ones first, one
    per line on stdout, so that ``tradewire replay`` of them gives the events the engine recorded."""
    out = sys.stdout.buffer
    with _exchange(None, data_dir) as (client, _):
        found = _segments(client, archive, data_dir)
        mark = found[-1].last.decode() if found else None
        applied = cast(bytes | None, client.get(keys.APPLIED))
        if config_out is not None:
            config_out.write_bytes(orjson.dumps(source.stored_config(client), option=orjson.OPT_INDENT_2))
        archived = sum(segment.entries for segment in found)
        in_redis = iter_journal(client, end=applied) if applied is not None else iter(())
        count = 0
        try:
            commands = itertools.chain(
                (fields.get(b"c", b"") for _, fields, _ in read_archive(found)),
                (fields.get(b"c", b"") for _, fields in in_redis),
            )
            for command in commands:
                out.write(replay_line(command) + b"\n")
                count += 1
        except ArchiveError as exc:
            raise _fail(f"journal export: {exc}") from exc
        if source.archived_mark(client) != mark:
            raise _fail("journal export: an archive ran meanwhile, so this may miss entries: run it again")
        pending = max(source.journal_length(client) + archived - count, 0)
    out.flush()
    typer.echo(
        f"exported {count} commands ({archived} from segments); {pending} pending (not applied yet)", err=True
    )
