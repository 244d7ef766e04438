from collections.abc import Callable, Sequence

from tradewire.engine import Event, ExchangeConfig
from tradewire.journal.entries import CommandEntry

class ReplyRenderer:
    def __init__(
        self, config: ExchangeConfig, python: Callable[[CommandEntry, Sequence[Event]], bytes]
    ) -> None: ...
    def __call__(self, entry: CommandEntry, events: Sequence[Event]) -> bytes: ...
