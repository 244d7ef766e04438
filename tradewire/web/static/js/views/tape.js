// The trade tape: the latest trades, newest on top, coloured by the taker's side (a buyer-maker
// trade was a sell). Rows are built once; a paint rewrites only rows whose trade changed.

import { fixed } from "../decimal.js";

export function clock(ms) {
  const d = new Date(ms);
  const two = (n) => String(n).padStart(2, "0");
  return `${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`;
}

export class TapeView {
  constructor(container, rows = 40) {
    this.container = container;
    this.rows = [];
    this.market = null;
    container.textContent = "";
    for (let i = 0; i < rows; i++) {
      const row = document.createElement("div");
      row.className = "trow";
      row.setAttribute("role", "row");
      const p = document.createElement("span");
      p.className = "p";
      p.setAttribute("role", "cell");
      const q = document.createElement("span");
      q.className = "q";
      q.setAttribute("role", "cell");
      const t = document.createElement("span");
      t.className = "t";
      t.setAttribute("role", "cell");
      row.append(p, q, t);
      container.append(row);
      this.rows.push({ row, p, q, t, id: null });
    }
  }

  setMarket(market) {
    this.market = market;
    for (const r of this.rows) r.id = null;
  }

  paint(feed) {
    const trades = feed.trades;
    const priceDecimals = this.market ? this.market.priceDecimals : 2;
    const qtyDecimals = this.market ? this.market.qtyDecimals : 5;
    for (let i = 0; i < this.rows.length; i++) {
      const r = this.rows[i];
      const trade = trades[i];
      const id = trade ? trade.id : null;
      if (r.id === id) continue;
      r.id = id;
      if (!trade) {
        r.p.textContent = r.q.textContent = r.t.textContent = "";
        r.row.className = "trow";
        r.row.removeAttribute("title");
        delete r.row.dataset.id;
        continue;
      }
      r.p.textContent = fixed(trade.price, priceDecimals);
      r.q.textContent = fixed(trade.qty, qtyDecimals);
      r.t.textContent = clock(trade.time);
      r.row.className = `trow ${trade.sell ? "down" : "up"}`;
      r.row.title = trade.sell ? "taker sold" : "taker bought";
      r.row.dataset.id = String(trade.id);
    }
  }
}
