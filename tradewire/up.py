"""Placeholder: replaced by ``tradewire up``."""

from pathlib import Path
from typing import Literal


def main(
    host: str,
    port: int,
    data_dir: Path | None,
    config: Path | None,
    demo: bool,
    fsync: Literal["always", "everysec"],
) -> None:
    raise NotImplementedError("tradewire up is being built")
