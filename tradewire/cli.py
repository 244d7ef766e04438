"""The ``tradewire`` command."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import orjson
import typer

from tradewire.engine import ConfigError, ExchangeConfig

app = typer.Typer(add_completion=False, no_args_is_help=True, help="tradewire: a crypto-exchange core.")


@app.callback()
def _root() -> None:
    """tradewire: a crypto-exchange core whose heart is real-time messaging."""


def load_config(path: Path) -> ExchangeConfig:
    """Read and check a config file, or exit with status 2 and a message naming the field."""
    try:
        raw = orjson.loads(path.read_bytes())
    except OSError as exc:
        typer.echo(f"config: cannot read {path}: {exc.strerror}", err=True)
        raise typer.Exit(2) from exc
    except orjson.JSONDecodeError as exc:
        typer.echo(f"config: {path} is not valid JSON: {exc}", err=True)
        raise typer.Exit(2) from exc
    try:
        return ExchangeConfig.from_dict(raw)
    except ConfigError as exc:
        typer.echo(f"config: {exc}", err=True)
        raise typer.Exit(2) from exc


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


def main() -> None:
    app()


if __name__ == "__main__":
    main()
