"""Placeholder: replaced by the operator commands."""

from pathlib import Path


def create_user(name: str, data_dir: Path | None) -> None:
    raise NotImplementedError("admin is being built")


def deposit(name: str, asset: str, amount: str, data_dir: Path | None) -> None:
    raise NotImplementedError("admin is being built")
