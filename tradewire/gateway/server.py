"""Placeholder: replaced by the gateway."""

from pathlib import Path


def main(host: str, port: int, data_dir: Path | None) -> None:
    raise NotImplementedError("the gateway is being built")
