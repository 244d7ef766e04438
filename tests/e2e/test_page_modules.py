"""The page's pure modules, run in chromium, checked against tradewire's own Python definitions.

The page proves its book with the same CRC32 checksum the engine publishes; these tests feed the
browser's implementation and tradewire's the same random books and strings and require the same
numbers, and drive the snapshot + diff procedure through its gap, checksum and straddle cases.
"""

from __future__ import annotations

import random
import zlib
from collections.abc import Iterator
from decimal import ROUND_FLOOR, Decimal, localcontext
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, Playwright

from tests.e2e.support import launch_chromium
from tradewire.engine.decimals import to_text
from tradewire.marketdata.checksum import book_checksum, checksum_text

PRECISION = 8


@pytest.fixture(scope="module")
def module_page(
    playwright: Playwright, static_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Page]:
    with launch_chromium(playwright, tmp_path_factory.mktemp("profile")) as context:
        page = context.new_page()
        page.goto(f"{static_url}/css/app.css")  # same origin as the modules, without starting the app
        yield page


def run_module(page: Page, module: str, body: str, arg: Any = None) -> Any:
    """Evaluate ``body`` (an async function body with ``m`` the imported module and ``arg``)."""
    script = f"async (arg) => {{ const m = await import('/js/{module}'); {body} }}"
    return page.evaluate(script, arg)


def random_side(rng: random.Random, count: int, *, bids: bool) -> list[tuple[int, int]]:
    base = 30_000 * 10**PRECISION
    tick = 10**6  # 0.01
    prices = rng.sample(range(1, 400), count)
    levels = [
        ((base - p * tick) if bids else (base + p * tick), rng.randint(1, 10**9) * 1000) for p in prices
    ]
    levels.sort(reverse=bids)
    return levels


def as_text(levels: list[tuple[int, int]]) -> list[list[str]]:
    return [[to_text(p, PRECISION), to_text(q, PRECISION)] for p, q in levels]


def test_crc32_with_random_ascii_strings_matches_zlib(module_page: Page) -> None:
    rng = random.Random(7)
    strings = ["", "100.5:0.3:101:0.5:100:1.25"] + [
        "".join(rng.choice("0123456789.:") for _ in range(rng.randint(1, 3000))) for _ in range(200)
    ]
    got = run_module(module_page, "crc32.js", "return arg.map((s) => m.crc32(s));", strings)
    assert got == [zlib.crc32(s.encode("ascii")) for s in strings]
    assert got[1] == 3836157906  # the worked example in tradewire/marketdata/checksum.py


def test_book_checksum_with_random_books_matches_the_engines_checksum(module_page: Page) -> None:
    rng = random.Random(11)
    books = []
    for _ in range(60):
        bids = random_side(rng, rng.randint(0, 60), bids=True)
        asks = random_side(rng, rng.randint(0, 60), bids=False)
        books.append((bids, asks))
    shuffled = [
        {"bids": rng.sample(as_text(b), len(b)), "asks": rng.sample(as_text(a), len(a))} for b, a in books
    ]
    got = run_module(
        module_page,
        "book.js",
        """return arg.map((s) => {
             const book = new m.Book();
             book.load({lastUpdateId: 1, bids: s.bids, asks: s.asks});
             return [book.checksumText(), book.checksum()];
           });""",
        shuffled,
    )
    for (bids, asks), (text, checksum) in zip(books, got, strict=True):
        assert text == checksum_text(bids, asks, PRECISION, PRECISION)
        assert checksum == book_checksum(bids, asks, PRECISION, PRECISION)


SYNC_SCENARIOS = """
const crc = await import('/js/crc32.js');
const book = await import('/js/book.js');
// the exchange's book after each diff, to give every diff a true checksum
const exchange = new book.Book();
exchange.load({lastUpdateId: 0, bids: [["100", "1"], ["99", "2"]], asks: [["101", "1"]]});
const diffs = [];
const changes = [
  [[["100", "1.5"]], []],
  [[], [["101", "0"], ["102", "3"]]],
  [[["99.5", "0.25"]], []],
  [[["100", "0"]], [["101.5", "1"]]],
];
let u = 10;
for (const [b, a] of changes) {
  exchange.apply(b, a);
  diffs.push({e: "depthUpdate", E: 1, U: u + 1, u: u + 2, pu: u, b, a, cs: exchange.checksum()});
  u += 2;
}
const snapshotAt12 = {lastUpdateId: 12, bids: [["100", "1.5"], ["99", "2"]], asks: [["101", "1"]]};
const results = {};

// 1. diffs buffered before the snapshot; the snapshot covers the first; the rest apply: live
let s = new m.DepthSync();
s.start();
for (const d of diffs) s.diff(d);
results.buffered = s.snapshot(snapshotAt12);
results.bufferedBook = [s.book.bids.top(10), s.book.asks.top(10), s.book.lastUpdateId, s.live];

// 2. a diff that straddles the snapshot's id applies cleanly (levels are absolute)
s = new m.DepthSync();
s.start();
results.straddle = s.snapshot({lastUpdateId: 13, bids: [["100", "1.5"], ["99", "2"]], asks: [["102", "3"]]});
results.straddleDiff = s.diff({...diffs[1], U: 13, u: 14, pu: 12});

// 3. a missing diff is a gap: resync
s = new m.DepthSync();
s.start();
s.snapshot(snapshotAt12);
results.gap = s.diff(diffs[2]);

// 4. a diff whose checksum disagrees with the book: resync
s = new m.DepthSync();
s.start();
s.snapshot(snapshotAt12);
results.badChecksum = s.diff({...diffs[1], cs: (diffs[1].cs + 1) >>> 0});

// 5. a snapshot older than the buffered stream: fetch another
s = new m.DepthSync();
s.start();
s.diff(diffs[3]);
results.old = s.snapshot({lastUpdateId: 12, bids: [], asks: []});

// 6. stale and duplicate diffs are ignored once live
s = new m.DepthSync();
s.start();
s.snapshot(snapshotAt12);
s.diff(diffs[1]);
results.duplicate = s.diff(diffs[1]);
results.alive = s.live;
return results;
"""


def test_depth_sync_with_gaps_checksums_and_straddles_resyncs_only_when_it_must(module_page: Page) -> None:
    r = run_module(module_page, "depthsync.js", SYNC_SCENARIOS)
    assert r["buffered"] == {"ok": True}
    bids, asks, last, live = r["bufferedBook"]
    assert bids == [["99.5", "0.25"], ["99", "2"]]
    assert asks == [["101.5", "1"], ["102", "3"]]
    assert (last, live) == (18, True)
    assert r["straddle"] == {"ok": True}
    assert r["straddleDiff"] == {"ok": True}
    assert "gap" in r["gap"]["resync"]
    assert "checksum" in r["badChecksum"]["resync"]
    assert "older" in r["old"]["refetch"]
    assert r["duplicate"] == {"stale": True}
    assert r["alive"] is True


def test_amount_presets_with_random_balances_are_exact_and_floored_to_the_lot(module_page: Page) -> None:
    rng = random.Random(3)
    cases: list[tuple[str, int, str, str]] = []
    for _ in range(300):
        quote = f"{rng.randint(0, 10**7)}.{rng.randint(0, 10**8 - 1):08d}"
        price = f"{rng.randint(1, 10**5)}.{rng.randint(0, 99):02d}"
        step = rng.choice(["0.00001", "0.0001", "0.001", "1", "0.5"])
        percent = rng.choice([25, 50, 75, 100])
        cases.append((quote, percent, price, step))
    got = run_module(
        module_page,
        "decimal.js",
        "return arg.map(([q, pct, p, s]) => [m.qtyForQuote(q, pct, p, s), m.fractionToStep(q, pct, s)]);",
        cases,
    )
    for (quote, percent, price, step), (qty, part) in zip(cases, got, strict=True):
        q, p, s = Decimal(quote), Decimal(price), Decimal(step)
        with localcontext(prec=80):  # no rounding before the floor
            expected_qty = (q * percent / 100 / p / s).to_integral_value(ROUND_FLOOR) * s
            expected_part = (q * percent / 100 / s).to_integral_value(ROUND_FLOOR) * s
            assert Decimal(qty) == expected_qty
            assert Decimal(part) == expected_part
            assert Decimal(qty) * p <= q * percent / 100  # never more than the balance allows


def test_ladder_grouping_with_tick_multiples_sums_exactly_and_never_improves_a_price(
    module_page: Page,
) -> None:
    rng = random.Random(5)
    bids = random_side(rng, 80, bids=True)
    asks = random_side(rng, 80, bids=False)
    got = run_module(
        module_page,
        "views/ladder.js",
        """const {Book} = await import('/js/book.js');
           const book = new Book();
           book.load({lastUpdateId: 1, bids: arg.bids, asks: arg.asks});
           return {
             bids: m.groupLevels(book.bids, true, "1", "0.01", 10, 8),
             asks: m.groupLevels(book.asks, false, "1", "0.01", 10, 8),
             steps: m.groupSteps("0.01"),
           };""",
        {"bids": as_text(bids), "asks": as_text(asks)},
    )
    assert got["steps"] == ["0.01", "0.1", "1", "10"]
    for side, levels, is_bid in (("bids", bids, True), ("asks", asks, False)):
        groups: dict[Decimal, Decimal] = {}
        for price, qty in levels:
            p = Decimal(to_text(price, PRECISION))
            key = p.to_integral_value(ROUND_FLOOR) if is_bid else -((-p).to_integral_value(ROUND_FLOOR))
            groups[key] = groups.get(key, Decimal(0)) + Decimal(to_text(qty, PRECISION))
        keys = sorted(groups, reverse=is_bid)[:10]
        total = Decimal(0)
        expected = []
        for key in keys:
            total += groups[key]
            expected.append((key, groups[key], total))
        assert [(Decimal(g["price"]), Decimal(g["qty"]), Decimal(g["total"])) for g in got[side]] == expected


def test_page_without_exchange_reports_it_unreachable(
    playwright: Playwright, static_url: str, tmp_path: Path
) -> None:
    with launch_chromium(playwright, tmp_path / "profile") as context:
        page = context.new_page()
        page.goto(static_url)
        page.wait_for_function("document.querySelector('#conn-text').textContent.includes('unreachable')")
        assert page.get_attribute("#conn", "data-state") == "down"
