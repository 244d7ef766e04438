"""Exchange configuration: assets with their precision, markets with their filters and fees.

A config is checked once, up front, and every rule it breaks is refused with a message that names
the field. After that the engine works only with the precomputed integer forms held here.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import orjson

from tradewire.engine.decimals import POW10, decimals_of, positive_units, to_units

_NUMBER = re.compile(r"\A[0-9]+(\.[0-9]+)?\Z")
MAX_PRECISION = 30


class ConfigError(ValueError):
    """A config that breaks a rule; the message starts with the offending field's path."""


@dataclass(frozen=True, slots=True)
class Asset:
    name: str
    precision: int


@dataclass(frozen=True, slots=True)
class Fee:
    """A fee rate as an exact fraction ``num / den``."""

    text: str
    num: int
    den: int

    def on(self, units: int) -> int:
        """The fee on ``units`` received, rounded up to the asset's precision."""
        return -((-units * self.num) // self.den)


@dataclass(frozen=True, slots=True)
class Market:
    """A market with every decimal already turned into integer units.

    Prices are counted in quote units per one whole base unit, quantities in base units, so the
    notional ``price * qty // base_scale`` is an exact count of quote units (the config rules
    guarantee the division leaves no remainder for valid prices and quantities).
    """

    name: str
    base: Asset
    quote: Asset
    tick_size: str
    lot_size: str
    min_notional: str
    tick: int
    lot: int
    min_notional_units: int
    maker_fee: Fee
    taker_fee: Fee
    base_scale: int

    def qty_units(self, text: str) -> int:
        """A quantity in base units if positive and a multiple of the lot size, else 0 (the
        engine's ``invalid_qty``; Binance's LOT_SIZE)."""
        units = positive_units(text, self.base.precision)
        return 0 if units % self.lot else units

    def price_units(self, text: str) -> int:
        """A price in quote units if positive and a multiple of the tick size, else 0 (the
        engine's ``invalid_price``; Binance's PRICE_FILTER)."""
        units = positive_units(text, self.quote.precision)
        return 0 if units % self.tick else units


@dataclass(frozen=True, slots=True)
class ExchangeConfig:
    assets: dict[str, Asset]
    markets: dict[str, Market]
    raw: dict[str, Any]

    @classmethod
    def from_dict(cls, raw: Any) -> ExchangeConfig:
        return _parse(raw)

    def to_dict(self) -> dict[str, Any]:
        return self.raw

    def precisions(self) -> dict[str, int]:
        """Each asset's precision (decimal places), by name."""
        return {name: asset.precision for name, asset in self.assets.items()}


def loads(data: bytes) -> Any:
    """A config file's JSON, refused when an object has a key twice (JSON parsers keep the last
    one silently: a market defined twice would be the second definition, whatever the first said).

    Raises ``ValueError`` for text that is not JSON (``orjson.JSONDecodeError``), ``ConfigError``
    for a key given twice."""
    raw = orjson.loads(data)

    def unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        seen: dict[str, Any] = {}
        for key, value in pairs:
            if key in seen:
                raise ConfigError(f"config: the key {key!r} appears twice in one object")
            seen[key] = value
        return seen

    try:
        json.loads(data, object_pairs_hook=unique)
    except RecursionError:  # orjson reads 1,024 levels, the stdlib parser fewer
        raise ConfigError("config: nested deeper than a config is read (about 1,000 levels)") from None
    return raw


def first_difference(before: Any, after: Any, where: str = "config") -> str | None:
    """The first place two raw configs differ (keys in sorted order), said as
    ``"assets.BTC.precision: 8 before, 4 now"``; ``None`` when they are equal.

    A journal means what it means under one config only: replayed under another, a deposit can
    become invalid, an unknown market known, a fee different, so the engine refuses to recover an
    exchange's journal under a config that differs from the one it ran with."""
    if isinstance(before, dict) and isinstance(after, dict):
        for key in sorted(set(before) | set(after)):
            path = f"{where}.{key}"
            if key not in after:
                return f"{path}: present before, absent now"
            if key not in before:
                return f"{path}: absent before, present now"
            found = first_difference(before[key], after[key], path)
            if found is not None:
                return found
        return None
    if before == after and type(before) is type(after):
        return None
    return f"{where}: {before!r} before, {after!r} now"


def unknown_fields(raw: Any) -> list[str]:
    """Paths of the fields a config has that no rule reads (typos such as ``takerfee``): callers warn,
    as a misspelt optional field otherwise silently takes its default."""
    if not isinstance(raw, dict):
        return []
    found = [key for key in raw if key not in ("assets", "markets")]
    for section, allowed in (("assets", _ASSET_FIELDS), ("markets", _MARKET_FIELDS)):
        entries = raw.get(section)
        if isinstance(entries, dict):
            for name, spec in entries.items():
                if isinstance(spec, dict):
                    found += [f"{section}.{name}.{key}" for key in spec if key not in allowed]
    return found


_ASSET_FIELDS = frozenset({"precision"})
_MARKET_FIELDS = frozenset(
    {"base", "quote", "tick_size", "lot_size", "min_notional", "maker_fee", "taker_fee"}
)


def _number(value: Any, where: str, *, positive: bool = True) -> str:
    if not isinstance(value, str) or not _NUMBER.match(value):
        raise ConfigError(f'{where}: must be a decimal string such as "0.01", got {value!r}')
    if positive and not any(c not in "0." for c in value):
        raise ConfigError(f"{where}: must be positive, got {value!r}")
    return value


def _fee(value: Any, where: str) -> Fee:
    text = _number(value, where, positive=False)
    places = decimals_of(text)
    units = to_units(text, places)
    if units is None:
        raise ConfigError(f"{where}: {text!r} has too many digits")
    if units >= POW10[places]:
        raise ConfigError(f"{where}: a fee rate must be below 1, got {text!r}")
    return Fee(text, units, POW10[places])


def _object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: must be an object, got {type(value).__name__}")
    return value


def _parse(raw: Any) -> ExchangeConfig:
    root = _object(raw, "config")
    assets: dict[str, Asset] = {}
    for name, spec in _object(root.get("assets"), "assets").items():
        where = f"assets.{name}.precision"
        precision = _object(spec, f"assets.{name}").get("precision")
        if isinstance(precision, str) and precision.isascii() and precision.isdigit():
            precision = int(precision)
        if isinstance(precision, float) and abs(precision) >= 2**63:  # orjson reads such integers as floats
            raise ConfigError(f"{where}: must be between 0 and {MAX_PRECISION}, got {precision:.0f}")
        if isinstance(precision, bool) or not isinstance(precision, int):
            raise ConfigError(f"{where}: must be an integer, got {precision!r}")
        if not 0 <= precision <= MAX_PRECISION:
            raise ConfigError(f"{where}: must be between 0 and {MAX_PRECISION}, got {precision}")
        assets[name] = Asset(name, precision)
    markets: dict[str, Market] = {}
    for name, spec in _object(root.get("markets"), "markets").items():
        markets[name] = _market(name, _object(spec, f"markets.{name}"), assets)
    return ExchangeConfig(assets, markets, root)


def _market(name: str, spec: dict[str, Any], assets: dict[str, Asset]) -> Market:
    where = f"markets.{name}"
    sides: list[Asset] = []
    for field in ("base", "quote"):
        asset_name = spec.get(field)
        if not isinstance(asset_name, str) or asset_name not in assets:
            raise ConfigError(f"{where}.{field}: unknown asset {asset_name!r}")
        sides.append(assets[asset_name])
    base, quote = sides
    if base.name == quote.name:
        raise ConfigError(f"{where}.quote: must differ from base ({base.name})")
    tick_size = _number(spec.get("tick_size"), f"{where}.tick_size")
    lot_size = _number(spec.get("lot_size"), f"{where}.lot_size")
    min_notional = _number(spec.get("min_notional", "0"), f"{where}.min_notional", positive=False)
    tick_places, lot_places = decimals_of(tick_size), decimals_of(lot_size)
    if tick_places > quote.precision:
        raise ConfigError(
            f"{where}.tick_size: {tick_size} has {tick_places} decimals, more than the precision "
            f"{quote.precision} of {quote.name}"
        )
    if lot_places > base.precision:
        raise ConfigError(
            f"{where}.lot_size: {lot_size} has {lot_places} decimals, more than the precision "
            f"{base.precision} of {base.name}"
        )
    if tick_places + lot_places > quote.precision:
        raise ConfigError(
            f"{where}.lot_size: the decimals of tick_size ({tick_places}) plus those of lot_size "
            f"({lot_places}) exceed the precision {quote.precision} of {quote.name}"
        )
    tick = to_units(tick_size, quote.precision)
    lot = to_units(lot_size, base.precision)
    mn_places = decimals_of(min_notional)
    mn_exact = to_units(min_notional, mn_places)
    for field, units in (("tick_size", tick), ("lot_size", lot), ("min_notional", mn_exact)):
        if units is None:
            raise ConfigError(f"{where}.{field}: more than 30 significant digits")
    assert tick is not None and lot is not None and mn_exact is not None
    # min_notional may be finer than the quote's precision: compare against its ceiling in units.
    if mn_places <= quote.precision:
        mn_units = mn_exact * POW10[quote.precision - mn_places]
    else:
        mn_units = -((-mn_exact) // POW10[mn_places - quote.precision])
    return Market(
        name=name,
        base=base,
        quote=quote,
        tick_size=tick_size,
        lot_size=lot_size,
        min_notional=min_notional,
        tick=tick,
        lot=lot,
        min_notional_units=mn_units,
        maker_fee=_fee(spec.get("maker_fee", "0"), f"{where}.maker_fee"),
        taker_fee=_fee(spec.get("taker_fee", "0"), f"{where}.taker_fee"),
        base_scale=POW10[base.precision],
    )
