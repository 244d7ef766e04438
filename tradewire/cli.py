"""The ``tradewire`` command."""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Annotated, Literal

import orjson
import typer

from tradewire.accounts.history import ORDER_HISTORY
from tradewire.engine import ConfigError, ExchangeConfig
from tradewire.engine.config import loads as config_loads
from tradewire.engine.config import unknown_fields
from tradewire.journal.lease import DEFAULT_SECONDS as LEASE_SECONDS
from tradewire.journal.snapshots import SNAPSHOT_EVERY, SNAPSHOT_EVERY_SECONDS

app = typer.Typer(add_completion=False, no_args_is_help=True, help="tradewire: a crypto-exchange core.")


@app.callback()
def _root() -> None:
    """tradewire: a crypto-exchange core whose heart is real-time messaging."""
    from tradewire.ops.logging import LEVEL_ENV, log_level

    try:
        log_level()  # every command logs: a bad level is refused once, here, not as a traceback
    except ValueError as exc:
        typer.echo(f"${LEVEL_ENV}: {exc}", err=True)
        raise typer.Exit(2) from exc


def load_config(path: Path) -> ExchangeConfig:
    """Read and check a config file, or exit with status 2 and a message naming the field."""
    try:
        raw = config_loads(path.read_bytes())
    except OSError as exc:
        typer.echo(f"config: cannot read {path}: {exc.strerror}", err=True)
        raise typer.Exit(2) from exc
    except orjson.JSONDecodeError as exc:
        typer.echo(f"config: {path} is not valid JSON: {exc}", err=True)
        raise typer.Exit(2) from exc
    except ConfigError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from exc
    try:
        config = ExchangeConfig.from_dict(raw)
    except ConfigError as exc:
        typer.echo(f"config: {exc}", err=True)
        raise typer.Exit(2) from exc
    for field in unknown_fields(raw):
        typer.echo(f"config: warning: {field} is not a config field; it is ignored", err=True)
    return config


@app.command()
def replay(
    config: Annotated[Path, typer.Option("--config", help="Exchange config (assets and markets), JSON.")],
) -> None:
    """Replay JSON commands from stdin; write events and the final state as JSON lines to stdout."""
    from tradewire.replay import replay_lines

    exchange = load_config(config)
    out = sys.stdout.buffer
    batch: list[bytes] = []
    for line in replay_lines(exchange, sys.stdin.buffer):
        batch.append(line)
        if len(batch) >= 4096:
            batch.append(b"")
            out.write(b"\n".join(batch))
            batch.clear()
    batch.append(b"")
    out.write(b"\n".join(batch))
    out.flush()


DataDir = Annotated[
    Path | None,
    typer.Option("--data-dir", help="Where the embedded Redis keeps its files (ignored with REDIS_URL)."),
]
ConfigFile = Annotated[
    Path | None, typer.Option("--config", help="Exchange config JSON (default: the demo).")
]


@app.command()
def engine(
    config: ConfigFile = None,
    data_dir: DataDir = None,
    snapshot_every: Annotated[int, typer.Option(help="Write a snapshot every N commands.")] = SNAPSHOT_EVERY,
    snapshot_seconds: Annotated[float, typer.Option(help="... or every T seconds.")] = SNAPSHOT_EVERY_SECONDS,
    metrics_port: Annotated[
        int, typer.Option(min=0, max=65535, help="Port of /metrics, /healthz, /readyz (0: none).")
    ] = 0,
    order_history: Annotated[
        int, typer.Option(help="Closed orders kept per user for order queries (open ones always).")
    ] = ORDER_HISTORY,
    lease_seconds: Annotated[
        float,
        typer.Option(
            help="TTL of the engine lease in Redis: one engine applies, others stand by; a standby "
            "takes over this long after the active engine died without releasing it."
        ),
    ] = LEASE_SECONDS,
) -> None:
    """Run the matching engine on the Redis journal: apply commands, publish events and market data."""
    from tradewire.journal.service import main as run

    run(config, data_dir, snapshot_every, snapshot_seconds, metrics_port, order_history, lease_seconds)


@app.command()
def gateway(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port of the REST + WebSocket server.")] = 8080,
    data_dir: DataDir = None,
) -> None:
    """Run a REST + WebSocket gateway (Binance-compatible) against the exchange's Redis."""
    from tradewire.gateway.server import main as run

    run(host, port, data_dir)


@app.command()
def up(
    host: Annotated[str, typer.Option(help="Address the gateway listens on.")] = "127.0.0.1",
    port: Annotated[
        int, typer.Option(min=1, max=65535, help="Port of the gateway (web page, REST, WebSocket).")
    ] = 8080,
    data_dir: DataDir = None,
    config: ConfigFile = None,
    demo: Annotated[bool, typer.Option("--demo", help="Also run market-maker and taker bots.")] = False,
    fsync: Annotated[
        str, typer.Option(help="Embedded Redis appendfsync: always (durable) or everysec (faster, weaker).")
    ] = "always",
    archive_every: Annotated[
        float,
        typer.Option(
            min=0,
            help="Every this many seconds, move the journal entries a snapshot covers out of Redis into "
            "<data-dir>/journal-archive (`tradewire journal archive`); 0: never (archive from cron).",
        ),
    ] = 600.0,
    archive_keep_seconds: Annotated[
        float, typer.Option(min=0, help="Entries of the last this many seconds stay in Redis.")
    ] = 600.0,
    lease_seconds: Annotated[
        float,
        typer.Option(
            min=0.5,
            help="The engine's --lease-seconds: with REDIS_URL shared by several `up`, how long a "
            "standby engine waits after the active one died without releasing the lease.",
        ),
    ] = LEASE_SECONDS,
) -> None:
    """Run the whole exchange: embedded Redis (without REDIS_URL), the engine and a gateway."""
    from tradewire.up import Archiving
    from tradewire.up import main as run

    if not lease_seconds < math.inf:  # typer's min=0.5 lets nan and inf through
        typer.echo(f"up: --lease-seconds must be a number >= 0.5, not {lease_seconds}", err=True)
        raise typer.Exit(2)
    archiving = Archiving(archive_every, archive_keep_seconds)
    run(host, port, data_dir, config, demo, _fsync(fsync), archiving, lease_seconds)


def _fsync(value: str) -> Literal["always", "everysec"]:
    if value not in ("always", "everysec"):
        typer.echo(f"--fsync: must be always or everysec, not {value!r}", err=True)
        raise typer.Exit(2)
    return "always" if value == "always" else "everysec"


admin_app = typer.Typer(no_args_is_help=True, help="Operator commands against a running exchange.")
app.add_typer(admin_app, name="admin")


@admin_app.command("create-user")
def create_user(name: str, data_dir: DataDir = None) -> None:
    """Create a user with an API key; print one JSON line {"user", "api_key", "api_secret"}."""
    from tradewire.admin import create_user as run

    run(name, data_dir)


@admin_app.command("deposit")
def deposit(name: str, asset: str, amount: str, data_dir: DataDir = None) -> None:
    """Credit AMOUNT of ASSET to user NAME, through the journal like any command."""
    from tradewire.admin import deposit as run

    run(name, asset, amount, data_dir)


@admin_app.command("withdraw")
def withdraw(name: str, asset: str, amount: str, data_dir: DataDir = None) -> None:
    """Debit AMOUNT of ASSET from user NAME's available balance, through the journal like any command."""
    from tradewire.admin import deposit as run

    run(name, asset, amount, data_dir, kind="withdraw")


@admin_app.command("create-key")
def create_key(
    name: str,
    data_dir: DataDir = None,
    read_only: Annotated[bool, typer.Option("--read-only", help="A key that reads, not trades.")] = False,
) -> None:
    """Give user NAME another API key; print one JSON line {"user", "api_key", "api_secret"}."""
    from tradewire.admin import create_user as run

    run(name, data_dir, new_user=False, read_only=read_only)


@admin_app.command("list-keys")
def list_keys(name: str, data_dir: DataDir = None) -> None:
    """Print user NAME's API keys, one JSON line each {"api_key", "user", "created", "permissions"}."""
    from tradewire.admin import list_keys as run

    run(name, data_dir)


@admin_app.command("revoke-key")
def revoke_key(api_key: str, data_dir: DataDir = None) -> None:
    """Delete API_KEY now: its requests are refused and the streams it opened end on every gateway."""
    from tradewire.admin import revoke_key as run

    run(api_key, data_dir)


journal_app = typer.Typer(no_args_is_help=True, help="The command journal kept in Redis.")
app.add_typer(journal_app, name="journal")


@journal_app.command("archive")
def journal_archive(
    directory: Annotated[Path, typer.Argument(help="Where the journal's segments are kept.")],
    data_dir: DataDir = None,
    keep_seconds: Annotated[
        float, typer.Option(min=0, help="Entries journalled in the last this many seconds stay in Redis.")
    ] = 600.0,
) -> None:
    """Move the journal entries a snapshot covers out of Redis into segment files in DIRECTORY."""
    from tradewire.journal.archive import run_archive

    run_archive(directory, data_dir, keep_seconds)


audit_app = typer.Typer(no_args_is_help=True, help="Prove and export what the exchange did.")
app.add_typer(audit_app, name="audit")


ArchiveDir = Annotated[
    Path | None,
    typer.Option("--archive", help="The journal's segments (`tradewire journal archive`), replayed first."),
]


@journal_app.command("export")
def journal_export(
    data_dir: DataDir = None,
    archive: ArchiveDir = None,
    config_out: Annotated[
        Path | None, typer.Option("--config-out", help="Also write the exchange config, for --config.")
    ] = None,
) -> None:
    """Write the applied journal's commands (archived ones first) as `tradewire replay` reads them."""
    from tradewire.audit.shell import export_journal as run

    run(data_dir, archive, config_out)


@audit_app.command("verify")
def audit_verify(config: ConfigFile = None, data_dir: DataDir = None, archive: ArchiveDir = None) -> None:
    """Replay the journal and prove it reproduces the recorded events; report the first divergence."""
    from tradewire.audit.shell import verify as run

    run(config, data_dir, archive)


@audit_app.command("export")
def audit_export(
    out: Annotated[Path, typer.Option("--out", help="File to write.")],
    fmt: Annotated[str, typer.Option("--format", help="csv or jsonl.")] = "jsonl",
    since: Annotated[int | None, typer.Option(help="From this exchange time (Unix ms).")] = None,
    until: Annotated[int | None, typer.Option(help="Up to this exchange time (Unix ms).")] = None,
    user: Annotated[str | None, typer.Option(help="Only this user.")] = None,
    data_dir: DataDir = None,
    archive: ArchiveDir = None,
) -> None:
    """Write trades and balance changes per user as CSV or JSONL for a period."""
    from tradewire.audit.shell import export as run

    run(out, fmt, since, until, user, data_dir, archive)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
