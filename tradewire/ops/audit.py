"""Placeholder: replaced by the audit trail."""

from pathlib import Path


def verify(config: Path | None, data_dir: Path | None) -> None:
    raise NotImplementedError("audit is being built")


def export(
    out: Path, fmt: str, since: int | None, until: int | None, user: str | None, data_dir: Path | None
) -> None:
    raise NotImplementedError("audit is being built")
