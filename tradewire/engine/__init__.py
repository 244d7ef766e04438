"""The pure matching engine: commands in, events out; no I/O, no clock, no floats."""

from tradewire.engine.codec import EventCodec
from tradewire.engine.commands import Cancel, Command, Deposit, NewOrder, Withdraw, decode
from tradewire.engine.config import ConfigError, ExchangeConfig
from tradewire.engine.engine import Engine
from tradewire.engine.events import Accepted, Canceled, Deposited, Event, Expired, Rejected, Trade, Withdrawn

__all__ = [
    "Accepted",
    "Cancel",
    "Canceled",
    "Command",
    "ConfigError",
    "Deposit",
    "Deposited",
    "Engine",
    "Event",
    "EventCodec",
    "ExchangeConfig",
    "Expired",
    "NewOrder",
    "Rejected",
    "Trade",
    "Withdraw",
    "Withdrawn",
    "decode",
]
