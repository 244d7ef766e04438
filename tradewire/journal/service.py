"""Placeholder: replaced by the engine service."""

from pathlib import Path


def main(
    config: Path | None,
    data_dir: Path | None,
    snapshot_every: int,
    snapshot_seconds: float,
    metrics_port: int,
) -> None:
    raise NotImplementedError("the engine service is being built")
