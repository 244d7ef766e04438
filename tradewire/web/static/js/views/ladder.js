// The order book ladder: asks above, bids below, the spread between, cumulative depth bars, and
// price grouping by multiples of the tick.
//
// `groupLevels` is pure: it folds a side's best-first levels into groups of `step` (bids round down,
// asks round up, so a group never shows a better price than any order in it) and sums quantities
// exactly in BigInt units. The cumulative column is exact too; only the bar widths are floats.
// The view builds its rows once and afterwards only rewrites the text and widths that changed.

import { ceilToStep, decimalsOf, fixed, floorToStep, fromUnits, sub, toUnits } from "../decimal.js";

/** Fold best-first [[price, qty], ...] into at most `rows` groups of `step`: [{price, qty, total}]. */
export function groupLevels(side, isBid, step, tick, rows, qtyScale) {
  const out = [];
  const grouping = step !== tick;
  let current = null;
  let units = 0n;
  let cumulative = 0n;
  const n = side.size;
  for (let i = 0; i < n; i++) {
    const price = side.prices[i];
    const qty = toUnits(side.qty.get(price), qtyScale);
    const key = !grouping ? price : isBid ? floorToStep(price, step) : ceilToStep(price, step);
    if (current !== null && key !== current) {
      cumulative += units;
      out.push({ price: current, qty: units, total: cumulative });
      if (out.length === rows) break;
      units = 0n;
    }
    current = key;
    units += qty;
  }
  if (current !== null && out.length < rows) {
    cumulative += units;
    out.push({ price: current, qty: units, total: cumulative });
  }
  return out.map((g) => ({
    price: g.price,
    qty: fromUnits(g.qty, qtyScale),
    total: fromUnits(g.total, qtyScale),
  }));
}

/** Tick multiples offered for grouping: 1, 10, 100, 1000 ticks. */
export function groupSteps(tick) {
  const steps = [tick];
  let step = tick;
  for (let i = 0; i < 3; i++) {
    const scale = decimalsOf(step);
    step = fromUnits(toUnits(step, scale) * 10n, scale); // times 10, exactly
    steps.push(step);
  }
  return steps;
}

export class LadderView {
  constructor({ asks, bids, spread, group, onPick }, rows = 16) {
    this.rows = rows;
    this.asksEl = asks;
    this.bidsEl = bids;
    this.spreadEl = spread;
    this.groupEl = group;
    this.askRows = this._build(asks, "ask", onPick);
    this.bidRows = this._build(bids, "bid", onPick);
    this.market = null;
    this.step = null;
  }

  _build(container, kind, onPick) {
    container.textContent = "";
    const rows = [];
    for (let i = 0; i < this.rows; i++) {
      const row = document.createElement("div");
      row.className = `lrow ${kind}`;
      row.setAttribute("role", "row");
      const bar = document.createElement("span");
      bar.className = "bar";
      bar.setAttribute("aria-hidden", "true");
      const p = document.createElement("span");
      p.className = "p";
      p.setAttribute("role", "cell");
      const q = document.createElement("span");
      q.className = "q";
      q.setAttribute("role", "cell");
      const t = document.createElement("span");
      t.className = "t";
      t.setAttribute("role", "cell");
      row.append(bar, p, q, t);
      row.addEventListener("click", () => {
        if (row.dataset.price) onPick(row.dataset.price);
      });
      container.append(row);
      rows.push({ row, bar, p, q, t, price: "", qty: "", total: "", width: "" });
    }
    return rows;
  }

  /** A market's tick and lot decide the grouping choices and the decimals shown. */
  setMarket(market) {
    this.market = market;
    const steps = groupSteps(market.tickSize);
    this.groupEl.textContent = "";
    for (const s of steps) {
      const option = document.createElement("option");
      option.value = s;
      option.textContent = s;
      this.groupEl.append(option);
    }
    this.step = market.tickSize;
    this.groupEl.value = this.step;
  }

  setStep(step) {
    this.step = step;
  }

  paint(feed) {
    const market = this.market;
    if (!market) return;
    const book = feed.sync.book;
    const priceDecimals = Math.max(decimalsOf(market.tickSize), 0);
    const stepDecimals = decimalsOf(this.step);
    const shownPriceDecimals = Math.min(priceDecimals, stepDecimals);
    const qtyScale = market.qtyScale;
    const qtyDecimals = decimalsOf(market.stepSize);
    const asks = groupLevels(book.asks, false, this.step, market.tickSize, this.rows, qtyScale);
    const bids = groupLevels(book.bids, true, this.step, market.tickSize, this.rows, qtyScale);
    const maxTotal = Math.max(
      asks.length ? Number(asks[asks.length - 1].total) : 0,
      bids.length ? Number(bids[bids.length - 1].total) : 0,
    );
    this._fill(this.askRows, asks, maxTotal, shownPriceDecimals, qtyDecimals);
    this._fill(this.bidRows, bids, maxTotal, shownPriceDecimals, qtyDecimals);
    const stale = !feed.sync.live;
    this.asksEl.parentElement.classList.toggle("stale", stale);
    this._spread(feed, book, priceDecimals);
  }

  _fill(rows, groups, maxTotal, priceDecimals, qtyDecimals) {
    for (let i = 0; i < rows.length; i++) {
      const r = rows[i];
      const g = groups[i];
      const price = g ? fixed(g.price, priceDecimals) : "";
      const qty = g ? fixed(g.qty, qtyDecimals) : "";
      const total = g ? fixed(g.total, qtyDecimals) : "";
      // bar width through a float: display only
      const width = g && maxTotal > 0 ? `scaleX(${(Number(g.total) / maxTotal).toFixed(3)})` : "scaleX(0)";
      if (r.price !== price) {
        r.p.textContent = price;
        r.price = price;
        r.row.dataset.price = g ? g.price : "";
      }
      if (r.qty !== qty) {
        r.q.textContent = qty;
        r.qty = qty;
      }
      if (r.total !== total) {
        r.t.textContent = total;
        r.total = total;
      }
      if (r.width !== width) {
        r.bar.style.transform = width; // a transform: no layout, only compositing
        r.width = width;
      }
    }
  }

  _spread(feed, book, priceDecimals) {
    const bid = book.bids.best();
    const ask = book.asks.best();
    const last = feed.lastTrade;
    const lastText = last ? fixed(last.price, priceDecimals) : "–";
    let spreadText = "";
    if (bid && ask) {
      const spread = sub(ask, bid);
      // percentage through a float: display only
      const pct = ((Number(spread) / Number(ask)) * 100).toFixed(3);
      spreadText = `Spread ${fixed(spread, priceDecimals)} (${pct}%)`;
    }
    const key = `${lastText}|${last ? last.sell : ""}|${spreadText}`;
    if (this.spreadKey === key) return;
    this.spreadKey = key;
    this.spreadEl.textContent = "";
    const lastEl = document.createElement("span");
    lastEl.className = `last ${last ? (last.sell ? "down" : "up") : ""}`;
    lastEl.textContent = lastText;
    const spreadEl = document.createElement("span");
    spreadEl.className = "muted";
    spreadEl.textContent = spreadText;
    this.spreadEl.append(lastEl, spreadEl);
  }
}
