"""The trading page in chromium against a real exchange (Redis, engine, two gateways).

The page talks to gateway 0 as a person's browser would; tests act as other traders through the
signed API (either gateway) and read what the page shows: its DOM, and for the book as a whole the
read-only ``window.tradewire`` handle, compared with the exchange's own REST answers.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, Playwright, Route, expect

from tests.e2e.support import (
    OrderFlow,
    Trader,
    canonical_levels,
    depth,
    launch_chromium,
    open_page,
    page_book,
    sign_in,
)
from tests.fixtures.exchange import Exchange, User
from tradewire.admin import revoke_key_record

SYMBOL = "BTCUSDT"


@pytest.fixture(scope="module")
def market(page_exchange: Exchange) -> dict[str, Any]:
    """A market with depth on both sides (10 levels each) and a few trades, made by two users."""
    maker = page_exchange.create_user("maker")
    taker = page_exchange.create_user("taker")
    for user in (maker, taker):
        page_exchange.deposit(user.name, "BTC", "1000")
        page_exchange.deposit(user.name, "USDT", "100000000")
    m = Trader(page_exchange.http_url, maker.api_key, maker.api_secret)
    t = Trader(page_exchange.http_url, taker.api_key, taker.api_secret)
    for i in range(10):
        m.order(SYMBOL, "BUY", f"0.{i + 1:02d}5", f"{29990 + i}")
        m.order(SYMBOL, "SELL", f"0.{i + 1:02d}5", f"{30010 - i}")
    for qty in ("0.001", "0.002", "0.003"):
        t.order(SYMBOL, "BUY", qty, "30001")  # takes from the 30001 ask
    return {"maker": maker, "taker": taker, "maker_api": m, "taker_api": t}


def new_user(exchange: Exchange, name: str, **deposits: str) -> tuple[User, Trader]:
    user = exchange.create_user(name)
    for asset, amount in deposits.items():
        exchange.deposit(name, asset, amount)
    return user, Trader(exchange.http_url, user.api_key, user.api_secret)


@pytest.fixture
def browser_page(
    playwright: Playwright, page_exchange: Exchange, market: dict[str, Any], tmp_path: Path
) -> Iterator[Page]:
    with launch_chromium(playwright, tmp_path / "profile") as context:
        yield open_page(context, f"{page_exchange.http_url}/")


def ladder(page: Page, side: str) -> list[tuple[Decimal, Decimal]]:
    """The ladder's non-empty rows of one side, best first, as numbers."""
    rows = page.eval_on_selector_all(
        f"#{side} .lrow",
        "rows => rows.map(r => [r.querySelector('.p').textContent, r.querySelector('.q').textContent])",
    )
    return [(Decimal(p), Decimal(q)) for p, q in rows if p]


def place_through_form(page: Page, side: str, price: str, amount: str) -> None:
    page.click(f"label[for=side-{side}]")
    page.click("label[for=type-limit]")
    page.fill("#price", price)
    page.fill("#amount", amount)
    page.click("#submit")


def balances_shown(page: Page) -> dict[str, tuple[Decimal, Decimal]]:
    page.click("#tab-balances")
    rows = page.eval_on_selector_all(
        "#balances tbody tr",
        "rows => rows.map(r => [r.dataset.asset, r.querySelector('.free').textContent,"
        " r.querySelector('.locked').textContent])",
    )
    return {asset: (Decimal(free), Decimal(locked)) for asset, free, locked in rows}


def as_numbers(balances: dict[str, tuple[str, str]]) -> dict[str, tuple[Decimal, Decimal]]:
    return {asset: (Decimal(f), Decimal(lk)) for asset, (f, lk) in balances.items()}


def wait_until(condition: Any, timeout: float = 15.0, message: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {message}")
        time.sleep(0.1)


def test_page_with_a_live_market_shows_book_chart_and_tape_populated(
    browser_page: Page, page_exchange: Exchange
) -> None:
    page = browser_page
    book = depth(page_exchange.http_url, SYMBOL, 20)
    expect(page.locator("#bids .lrow").first.locator(".p")).not_to_be_empty()
    bids = ladder(page, "bids")
    asks = ladder(page, "asks")
    assert bids[:10] == [(Decimal(p), Decimal(q)) for p, q in book["bids"][:10]]
    assert asks[:10] == [(Decimal(p), Decimal(q)) for p, q in book["asks"][:10]]
    trades = page_exchange_trades(page_exchange)
    expect(page.locator("#tape .trow").first).to_have_attribute("data-id", str(trades[-1]["id"]))
    page.wait_for_function("tradewire.feed.bars.length > 0 && tradewire.chart.last !== null")
    assert page.evaluate("tradewire.chart.last.close") == trades[-1]["price"]
    assert page.locator("#chart canvas").count() > 0
    expect(page.locator("#conn")).to_have_attribute("data-state", "live")
    expect(page.locator("#tk-last")).to_have_text(re.compile(r"^[0-9,]+\.[0-9]{2}$"))


def page_exchange_trades(exchange: Exchange) -> list[dict[str, Any]]:
    response = httpx.get(f"{exchange.http_url}/api/v3/trades", params={"symbol": SYMBOL, "limit": 10})
    response.raise_for_status()
    result: list[dict[str, Any]] = response.json()
    return result


def test_order_placed_through_the_form_shows_in_the_book_and_in_open_orders(
    browser_page: Page, page_exchange: Exchange
) -> None:
    page = browser_page
    user, api = new_user(page_exchange, "form-user", USDT="100000")
    page.click("#signin-btn")
    page.fill("#api-key", user.api_key)
    page.fill("#api-secret", "not-the-secret")
    page.click("#signin-dialog [type=submit]")
    expect(page.locator("#signin-error")).to_contain_text("code")  # the API's refusal, shown in the dialog
    page.click("#signin-cancel")
    sign_in(page, user.api_key, user.api_secret)

    place_through_form(page, "buy", "29999.5", "0.01234")
    row = page.locator("#open-orders tbody tr")
    expect(row).to_have_count(1)
    order_id = int(row.first.get_attribute("data-order-id") or "0")
    assert [o["orderId"] for o in api.open_orders(SYMBOL)] == [order_id]
    expect(page.locator("#bids .lrow").first.locator(".p")).to_have_text("29999.50")
    expect(page.locator("#bids .lrow").first.locator(".q")).to_have_text("0.01234")

    place_through_form(page, "buy", "29999.5", "1000")  # 30M USDT: more than the balance
    expect(page.locator("#form-error")).to_be_visible()
    expect(page.locator("#form-error")).to_contain_text("code -")
    expect(page.locator("#open-orders tbody tr")).to_have_count(1)
    api.cancel_all(SYMBOL)


def test_fill_by_another_user_shows_in_the_tape_the_candle_and_both_users_balances(
    playwright: Playwright, browser_page: Page, page_exchange: Exchange, tmp_path: Path
) -> None:
    buyer_page = browser_page
    buyer, buyer_api = new_user(page_exchange, "fill-buyer", USDT="50000")
    seller, seller_api = new_user(page_exchange, "fill-seller", BTC="2")
    sign_in(buyer_page, buyer.api_key, buyer.api_secret)
    place_through_form(buyer_page, "buy", "29999.6", "0.01")
    expect(buyer_page.locator("#open-orders tbody tr")).to_have_count(1)

    with launch_chromium(playwright, tmp_path / "seller-profile") as context:
        seller_page = open_page(context, f"{page_exchange.http_url}/")
        sign_in(seller_page, seller.api_key, seller.api_secret)
        result = seller_api.order(SYMBOL, "SELL", "0.01", "29999.6")
        assert result["status"] == "FILLED"
        trade_id = result["fills"][0]["tradeId"]

        tape = buyer_page.locator("#tape .trow").first
        expect(tape).to_have_attribute("data-id", str(trade_id))
        expect(tape.locator(".p")).to_have_text("29999.60")
        expect(tape.locator(".q")).to_have_text("0.01000")
        expect(tape).to_have_class("trow down")  # the taker sold
        buyer_page.wait_for_function("tradewire.chart.last && tradewire.chart.last.close === '29999.6'")
        expect(buyer_page.locator("#open-orders tbody tr")).to_have_count(0)

        for page, api in ((buyer_page, buyer_api), (seller_page, seller_api)):
            truth = as_numbers(api.balances())
            wait_until(
                lambda p=page, t=truth: balances_shown(p) == t, message="balances equal to the account"
            )
        bought = balances_shown(buyer_page)["BTC"][0]
        assert bought == Decimal("0.01") * (1 - Decimal("0.001"))  # the maker fee, in the asset received
        assert balances_shown(seller_page)["BTC"] == (Decimal("1.99"), Decimal("0"))
        buyer_page.click("#tab-fills")
        expect(buyer_page.locator(f"#fills tbody tr[data-trade-id='{trade_id}']")).to_have_count(1)


def test_cancel_from_the_page_removes_the_order_from_book_and_open_orders(
    browser_page: Page, page_exchange: Exchange
) -> None:
    page = browser_page
    user, api = new_user(page_exchange, "cancel-user", USDT="10000")
    sign_in(page, user.api_key, user.api_secret)
    place_through_form(page, "buy", "29999.7", "0.02")
    expect(page.locator("#bids .lrow").first.locator(".p")).to_have_text("29999.70")
    page.click("#tab-open")
    page.locator("#open-orders .cancel").first.click()
    expect(page.locator("#open-orders tbody tr")).to_have_count(0)
    expect(page.locator("#bids .lrow").first.locator(".p")).not_to_have_text("29999.70")
    assert api.open_orders(SYMBOL) == []
    page.click("#tab-history")
    expect(page.locator("#order-history tbody tr").first).to_contain_text("CANCELED")
    assert as_numbers(api.balances())["USDT"] == (Decimal("10000"), Decimal("0"))


def books_equal(page: Page, exchange: Exchange) -> bool:
    mine = page_book(page)
    truth = depth(exchange.http_url, SYMBOL)
    return bool(
        mine["live"]
        and mine["lastUpdateId"] == truth["lastUpdateId"]
        and mine["bids"] == canonical_levels(truth["bids"])
        and mine["asks"] == canonical_levels(truth["asks"])
    )


def test_gateway_killed_and_restarted_the_page_resynchronises_to_the_exchanges_book(
    browser_page: Page, page_exchange: Exchange, market: dict[str, Any]
) -> None:
    page = browser_page
    maker: User = market["maker"]
    taker: User = market["taker"]
    flow = OrderFlow(
        page_exchange.http_urls[1],  # the other gateway keeps the market moving while 0 is down
        (maker.api_key, maker.api_secret),
        (taker.api_key, taker.api_secret),
        SYMBOL,
        Decimal("30000"),
        rate=60,
        concurrency=4,
    ).start()
    try:
        page.wait_for_function("tradewire.feed.sync.applied > 5")
        page_exchange.gateways[0].kill()  # SIGKILL: no goodbye to anyone
        page_exchange.gateways[0].wait()
        expect(page.locator("#conn")).to_have_attribute("data-state", "down")
        applied_while_down = page.evaluate("tradewire.feed.sync.applied")
        time.sleep(2.0)
        page_exchange.start_gateway(0)
        page_exchange.wait_ready()
        expect(page.locator("#conn")).to_have_attribute("data-state", "live", timeout=20_000)
        assert page.evaluate("tradewire.feed.socket.connections") >= 2
        page.wait_for_function(f"tradewire.feed.sync.applied > {applied_while_down + 5}")
    finally:
        flow.stop()
    assert flow.sent > 100
    wait_until(
        lambda: books_equal(page, page_exchange),
        timeout=20,
        message="the page's book to equal the exchange's",
    )


def test_market_selector_and_interval_switcher_with_clicks_show_the_chosen_market_and_candles(
    browser_page: Page, page_exchange: Exchange, market: dict[str, Any]
) -> None:
    page = browser_page
    page.click("[data-interval='5m']")
    expect(page.locator("[data-interval='5m']")).to_have_attribute("aria-pressed", "true")
    page.wait_for_function("tradewire.feed.interval === '5m' && tradewire.feed.barsLoaded")
    assert page.evaluate("tradewire.feed.bars.length") >= 1
    maker: Trader = market["maker_api"]
    maker.order("ETHUSDT", "BUY", "0.5", "3000.25")
    page.select_option("#market-select", "ETHUSDT")
    page.wait_for_function("tradewire.feed.symbol === 'ETHUSDT' && tradewire.feed.sync.live")
    expect(page.locator("#bids .lrow").first.locator(".p")).to_have_text("3000.25")
    expect(page.locator("#amount-unit")).to_have_text("ETH")
    assert page.evaluate("location.hash") == "#ETHUSDT"
    maker.cancel_all("ETHUSDT")


def test_answers_for_the_market_left_do_not_reach_the_market_chosen(
    browser_page: Page, page_exchange: Exchange, market: dict[str, Any]
) -> None:
    """A trader leaves a market while its trades, candles and ticker are still on their way, and the
    next market's stream cannot open at once (its gateway just went down); the answers for the
    market left come meanwhile and must not land in the chosen market's tape, chart or header."""
    page = browser_page
    _, maker = new_user(page_exchange, "switch-maker", ETH="1")
    _, trader = new_user(page_exchange, "switch-taker", USDT="100000")
    for price in ("3100.5", "3100.75"):
        maker.order("ETHUSDT", "SELL", "0.02", price)
        trader.order("ETHUSDT", "BUY", "0.02", price)
    held: list[Route] = []
    slow = re.compile(r"/api/v3/(trades|klines|ticker/24hr)\?symbol=BTCUSDT")
    page.route(slow, lambda route: held.append(route))
    page.select_option("#market-select", "ETHUSDT")
    page.wait_for_function("tradewire.feed.symbol === 'ETHUSDT' && tradewire.feed.sync.live")
    page.select_option("#market-select", "BTCUSDT")
    for _ in range(200):  # Playwright calls the route handler while it waits, not while we sleep
        if len(held) == 3:
            break
        page.wait_for_timeout(50)
    assert len(held) == 3, "the BTCUSDT page asks for its trades, candles and ticker"
    page_exchange.gateways[0].kill()
    page_exchange.gateways[0].wait()
    page.select_option("#market-select", "ETHUSDT")
    other = page_exchange.http_urls[1]
    for route in held:  # answered now, by the other gateway
        path = route.request.url[route.request.url.index("/api/") :]
        with page.expect_event("requestfinished", lambda r, path=path: r.url.endswith(path)):
            route.continue_(url=other + path)
    page.evaluate("new Promise((resolve) => setTimeout(resolve, 200))")  # their handlers have run
    page.unroute(slow)
    page_exchange.start_gateway(0)
    page_exchange.wait_ready()
    page.wait_for_function("tradewire.feed.symbol === 'ETHUSDT' && tradewire.feed.sync.live", timeout=20_000)
    page.wait_for_function("tradewire.feed.trades.length > 0 && tradewire.feed.barsLoaded")

    trades = httpx.get(f"{page_exchange.http_url}/api/v3/trades", params={"symbol": "ETHUSDT"}).json()
    tape = page.evaluate("tradewire.feed.trades.map((t) => [t.id, t.price])")
    assert tape == [[t["id"], t["price"]] for t in reversed(trades)]
    assert page.evaluate("tradewire.feed.ticker.last") == "3100.75"
    bars = page.evaluate("tradewire.feed.bars.map((b) => b.close)")
    assert bars and all(close.startswith("3100.") for close in bars)
    page.select_option("#market-select", "BTCUSDT")


def test_amount_presets_with_a_balance_fill_the_exact_share_floored_to_the_lot(
    browser_page: Page, page_exchange: Exchange
) -> None:
    page = browser_page
    user, _ = new_user(page_exchange, "preset-user", USDT="1000", BTC="0.123456")
    sign_in(page, user.api_key, user.api_secret)
    page.click("label[for=side-buy]")
    page.fill("#price", "29999.5")
    page.click("[data-pct='100']")
    assert page.input_value("#amount") == "0.03333"  # 1000 / 29999.5 = 0.033333..., lot 0.00001
    page.click("[data-pct='25']")
    assert page.input_value("#amount") == "0.00833"
    page.click("label[for=side-sell]")
    page.click("[data-pct='50']")
    assert page.input_value("#amount") == "0.06172"  # half of 0.123456, floored to the lot
    expect(page.locator("#avail")).to_have_text("0.123456 BTC")


def test_api_key_revoked_while_signed_in_signs_the_page_out_and_says_why(
    browser_page: Page, page_exchange: Exchange
) -> None:
    """The user data stream ends with its key (``tradewire admin revoke-key``); the page must not
    go on asking for listen keys with a key the exchange refuses, showing the last balances as if
    they were still followed."""
    page = browser_page
    user, _ = new_user(page_exchange, "revoked-user", USDT="1000")
    sign_in(page, user.api_key, user.api_secret)
    expect(page.locator("#balances tbody tr[data-asset=USDT] .free")).to_have_text("1000")
    client = page_exchange.redis.client()
    try:
        revoke_key_record(client, user.api_key)
    finally:
        client.close()
    expect(page.locator("#account-error")).to_contain_text("code -2015", timeout=20_000)
    expect(page.locator("#signin-btn")).to_have_text("Sign in")
    expect(page.locator("#account-empty")).to_be_visible()
    assert page.evaluate("tradewire.user.state") == "signed-out"
    assert page.evaluate("sessionStorage.getItem('tradewire.apiSecret')") is None


def test_page_at_360_pixels_wide_fits_without_sideways_scrolling(
    playwright: Playwright, page_exchange: Exchange, market: dict[str, Any], tmp_path: Path
) -> None:
    with launch_chromium(playwright, tmp_path / "profile", 360, 780) as context:
        page = open_page(context, f"{page_exchange.http_url}/")
        assert page.evaluate("document.documentElement.scrollWidth") <= 360
        for panel in ("#chart", "#bids", "#order-form", "#tape", "#depth", "#account"):
            box = page.locator(panel).bounding_box()
            assert box is not None and box["width"] > 0 and box["x"] >= 0 and box["x"] + box["width"] <= 360
        expect(page.locator("#bids .lrow").first.locator(".p")).not_to_be_empty()


def test_answers_for_a_user_signed_out_never_reach_the_next_user_signed_in(
    browser_page: Page, page_exchange: Exchange
) -> None:
    """One user signs out and another signs in, in the same tab, while the first one's account,
    orders and listen key are still on their way: none of them may show as, or feed, the second's."""
    page = browser_page
    first, first_api = new_user(page_exchange, "leaving-user", ETH="7")
    first_api.order("ETHUSDT", "SELL", "0.5", "4321")
    second, _ = new_user(page_exchange, "arriving-user", USDT="2000")
    sign_in(page, first.api_key, first.api_secret)
    expect(page.locator("#balances tbody tr[data-asset=ETH] .free")).to_have_text("6.5")

    held: list[Route] = []

    def hold_the_first_users(route: Route) -> None:
        if route.request.headers.get("x-mbx-apikey") == first.api_key:
            held.append(route)
        else:
            route.continue_()

    account_paths = re.compile(r"/api/v3/(account|openOrders|allOrders|myTrades|userDataStream)")
    page.route(account_paths, hold_the_first_users)
    page.evaluate("() => { tradewire.user.refresh(); tradewire.user._renewKey(); }")  # not awaited: held
    for _ in range(200):  # Playwright calls the route handler while it waits, not while we sleep
        if len(held) >= 5:
            break
        page.wait_for_timeout(50)
    assert len(held) >= 5, "the page asks for the account, its orders, fills and a listen key"

    page.click("#signin-btn")  # sign out
    sign_in(page, second.api_key, second.api_secret)
    expect(page.locator("#balances tbody tr[data-asset=USDT] .free")).to_have_text("2000")
    for route in held:  # the first user's answers arrive now
        with page.expect_event("requestfinished", lambda r, url=route.request.url: r.url == url):
            route.continue_()
    page.evaluate("new Promise((resolve) => setTimeout(resolve, 300))")  # their handlers have run
    page.unroute(account_paths)

    # every asset is listed, those the second user never held at zero: none holds the first's
    assert {asset for asset, amounts in balances_shown(page).items() if any(amounts)} == {"USDT"}
    assert page.evaluate("[...tradewire.user.account.orders.values()].length") == 0
    listen_key = page.evaluate("tradewire.user.listenKey")
    kept = httpx.put(
        f"{page_exchange.http_url}/api/v3/userDataStream",
        params={"listenKey": listen_key},
        headers={"X-MBX-APIKEY": second.api_key},
    )
    assert kept.status_code == 200, "the stream followed must be the second user's"
