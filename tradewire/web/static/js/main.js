// The trading page: wires the feeds (state, updated as messages arrive) to the views (DOM, painted at
// most once per animation frame).
//
// `invalidate(part)` is the only way state asks for pixels: it marks the part dirty and the Painter
// (scheduler.js) paints every dirty part once in the next animation frame, however many messages
// came in between. That keeps the main thread's work per message to a JSON parse and a few map
// updates, and the paint cost bounded by the display's frame rate rather than the message rate.

import { Api, ApiError } from "./api.js";
import { canonical, decimalsOf } from "./decimal.js";
import { INTERVALS, MarketFeed } from "./market.js";
import { Painter } from "./scheduler.js";
import { clearCredentials, loadCredentials, saveCredentials } from "./session.js";
import { UserFeed } from "./user.js";
import { AccountView } from "./views/accountview.js";
import { ChartView } from "./views/chart.js";
import { DepthChartView } from "./views/depthchart.js";
import { SignInDialog, StatusView, TickerView } from "./views/header.js";
import { LadderView } from "./views/ladder.js";
import { OrderForm } from "./views/orderform.js";
import { TapeView } from "./views/tape.js";

const $ = (selector) => document.querySelector(selector);

/** What the page needs of one exchangeInfo symbol. */
export function marketInfo(s) {
  const filters = Object.fromEntries((s.filters || []).map((f) => [f.filterType, f]));
  const tickSize = canonical((filters.PRICE_FILTER && filters.PRICE_FILTER.tickSize) || "0.01");
  const stepSize = canonical((filters.LOT_SIZE && filters.LOT_SIZE.stepSize) || "0.00000001");
  const notional = filters.NOTIONAL || filters.MIN_NOTIONAL || {};
  return {
    symbol: s.symbol,
    baseAsset: s.baseAsset,
    quoteAsset: s.quoteAsset,
    tickSize,
    stepSize,
    minNotional: notional.minNotional || "0",
    priceDecimals: decimalsOf(tickSize),
    qtyDecimals: decimalsOf(stepSize),
    qtyScale: Math.max(Number(s.baseAssetPrecision || 8), decimalsOf(stepSize)),
  };
}

function cssColors() {
  const style = getComputedStyle(document.documentElement);
  const v = (name) => style.getPropertyValue(name).trim();
  return {
    panel: v("--panel"),
    border: v("--border"),
    grid: v("--grid"),
    muted: v("--muted"),
    up: v("--up"),
    down: v("--down"),
    upFill: v("--up-fill"),
    downFill: v("--down-fill"),
    upVolume: v("--up-volume"),
    downVolume: v("--down-volume"),
  };
}

async function main() {
  const api = new Api("");
  const painter = new Painter();
  const invalidate = (part) => painter.invalidate(part);

  const colors = cssColors();
  const feed = new MarketFeed(api, invalidate);
  const user = new UserFeed(api, invalidate);
  const ticker = new TickerView($("#topbar"));
  const status = new StatusView($("#conn"));
  const chart = new ChartView($("#chart"), colors);
  const depth = new DepthChartView($("#depth"), colors);
  const tape = new TapeView($("#tape"));
  let form = null;
  const ladder = new LadderView(
    { asks: $("#asks"), bids: $("#bids"), spread: $("#spread"), group: $("#book-group"), onPick: (p) => form.pick(p) },
    14,
  );
  const signIn = new SignInDialog($("#signin-dialog"), {
    onSubmit: async (apiKey, secret) => {
      await api.setCredentials(apiKey, secret);
      try {
        await api.account(); // proves key, secret and clock before keeping them
      } catch (err) {
        api.clearCredentials();
        throw err;
      }
      saveCredentials(apiKey, secret);
      signedIn();
    },
  });
  form = new OrderForm($("#order-form"), { api, user, feed, onSignIn: () => signIn.open() });
  const accountError = $("#account-error");
  const accountView = new AccountView($("#account"), {
    api,
    user,
    onError: (text) => showAccountError(text),
  });
  function showAccountError(text) {
    accountError.textContent = text;
    accountError.hidden = !text;
  }

  // The ladder and the tape at up to 10 paints a second (Binance's own depth cadence, and faster than
  // anyone reads them), 5 when more than 300 updates a second arrive; status and ticker at 4, the depth
  // chart at 4 and the candles at 2: whole-canvas redraws are the costly part of a frame.
  const textInterval = () => (feed.rate > 300 ? 200 : 100);
  painter.register("book", () => {
    ladder.paint(feed);
    status.record(feed, api);
    if (form.type === "MARKET") form.paintTotal();
    painter.invalidate("depth");
  }, textInterval);
  painter.register("depth", () => depth.paint(feed), 250);
  painter.register("tape", () => {
    tape.paint(feed);
    status.record(feed, api);
  }, textInterval);
  painter.register("chart", () => chart.paint(feed), 500);
  painter.register("ticker", () => ticker.paint(feed), 250);
  painter.register("account", () => {
    accountView.paint();
    form.paint();
  });
  painter.register("status", () => status.paint(feed, user, api), 250);

  // -- markets ----------------------------------------------------------------------------------------
  let info;
  for (let attempt = 0; ; attempt++) {
    try {
      info = await api.exchangeInfo();
      break;
    } catch (err) {
      $("#conn-text").textContent = `exchange unreachable (${err.message}), retrying`;
      await new Promise((resolve) => setTimeout(resolve, Math.min(10000, 500 * 2 ** attempt)));
    }
  }
  const markets = new Map();
  for (const s of info.symbols) if (!s.status || s.status === "TRADING") markets.set(s.symbol, marketInfo(s));
  api.syncClock().catch(() => {});

  const select = $("#market-select");
  for (const m of markets.values()) {
    const option = document.createElement("option");
    option.value = m.symbol;
    option.textContent = `${m.baseAsset}/${m.quoteAsset}`;
    select.append(option);
  }

  function openMarket(symbol) {
    const market = markets.get(symbol);
    select.value = symbol;
    ladder.setMarket(market);
    tape.setMarket(market);
    chart.setMarket(market);
    ticker.setMarket(market);
    form.setMarket(market);
    document.querySelectorAll(".unit-quote").forEach((el) => (el.textContent = market.quoteAsset));
    document.querySelectorAll(".unit-base").forEach((el) => (el.textContent = market.baseAsset));
    feed.open(symbol);
    user.setSymbol(symbol);
  }

  select.addEventListener("change", () => {
    history.replaceState(null, "", `#${select.value}`);
    openMarket(select.value);
  });
  $("#book-group").addEventListener("change", (event) => {
    ladder.setStep(event.target.value);
    invalidate("book");
  });

  // -- intervals -------------------------------------------------------------------------------------
  const intervals = $("#intervals");
  for (const interval of INTERVALS) {
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = interval;
    button.dataset.interval = interval;
    button.setAttribute("aria-pressed", String(interval === feed.interval));
    button.addEventListener("click", () => {
      for (const b of intervals.children) b.setAttribute("aria-pressed", String(b === button));
      feed.setInterval(interval);
    });
    intervals.append(button);
  }

  // -- sign-in -------------------------------------------------------------------------------------
  const signInButton = $("#signin-btn");
  function signedIn() {
    signInButton.textContent = "Sign out";
    signInButton.setAttribute("aria-label", `Sign out (key ${api.apiKey.slice(0, 6)}…)`);
    showAccountError("");
    user.start(feed.symbol);
    invalidate("account");
  }
  function signOut() {
    user.stop();
    api.clearCredentials();
    clearCredentials();
    signInButton.textContent = "Sign in";
    signInButton.removeAttribute("aria-label");
    invalidate("account");
  }
  signInButton.addEventListener("click", () => (api.signedIn ? signOut() : signIn.open()));
  user.onRejected = (err) => {
    signOut();
    showAccountError(`Signed out: the exchange refused the API key: ${err.display}`);
  };
  $("#account-signin").addEventListener("click", () => signIn.open());

  const fromHash = location.hash.slice(1).toUpperCase();
  const first = markets.has(fromHash) ? fromHash : markets.has("BTCUSDT") ? "BTCUSDT" : [...markets.keys()][0];
  openMarket(first);

  const saved = loadCredentials();
  if (saved) {
    try {
      await api.setCredentials(saved.apiKey, saved.secret);
      signedIn();
    } catch (err) {
      console.warn(`tradewire: stored credentials: ${err instanceof ApiError ? err.display : err}`);
    }
  }

  // A read-only window into the page's state, for people debugging it and for the end-to-end tests.
  globalThis.tradewire = {
    feed,
    user,
    api,
    stats: painter.stats,
    markets,
    chart,
    views: { chart, depth, ladder, tape, ticker, status, form, accountView },
    book() {
      const b = feed.sync.book;
      return {
        live: feed.sync.live,
        lastUpdateId: b.lastUpdateId,
        bids: b.bids.top(b.bids.size),
        asks: b.asks.top(b.asks.size),
      };
    },
  };
  document.documentElement.dataset.ready = "true";
}

main();
