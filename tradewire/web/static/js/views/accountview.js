// The user's tables: open orders (with cancel), order history, fills and balances, behind tabs.
//
// Tables are rebuilt only when their content changed (a key string over the rows), at most once
// per animation frame like everything else; the tab strip follows the WAI-ARIA tabs pattern.

import { ApiError } from "../api.js";
import { clock } from "./tape.js";

function cell(text, className) {
  const td = document.createElement("td");
  td.textContent = text;
  if (className) td.className = className;
  return td;
}

function dateTime(ms) {
  const d = new Date(Number(ms));
  const two = (n) => String(n).padStart(2, "0");
  return `${two(d.getMonth() + 1)}-${two(d.getDate())} ${clock(Number(ms))}`;
}

export class AccountView {
  constructor(root, { api, user, onError }) {
    this.root = root;
    this.api = api;
    this.user = user;
    this.onError = onError;
    this.keys = {};
    this.tabs = [...root.querySelectorAll("[role=tab]")];
    for (const tab of this.tabs) {
      tab.addEventListener("click", () => this.select(tab));
      tab.addEventListener("keydown", (event) => {
        const i = this.tabs.indexOf(tab);
        if (event.key === "ArrowRight") this.select(this.tabs[(i + 1) % this.tabs.length], true);
        if (event.key === "ArrowLeft") this.select(this.tabs[(i + this.tabs.length - 1) % this.tabs.length], true);
      });
    }
    this.bodies = {
      open: root.querySelector("#open-orders tbody"),
      history: root.querySelector("#order-history tbody"),
      fills: root.querySelector("#fills tbody"),
      balances: root.querySelector("#balances tbody"),
    };
    this.empty = root.querySelector("#account-empty");
  }

  select(tab, focus = false) {
    for (const t of this.tabs) {
      const selected = t === tab;
      t.setAttribute("aria-selected", String(selected));
      t.tabIndex = selected ? 0 : -1;
      document.getElementById(t.getAttribute("aria-controls")).hidden = !selected;
    }
    if (focus) tab.focus();
  }

  _table(name, rows, key, build) {
    if (this.keys[name] === key) return;
    this.keys[name] = key;
    const body = this.bodies[name];
    body.textContent = "";
    for (const row of rows) body.append(build(row));
  }

  paint() {
    const signedIn = this.api.signedIn;
    this.empty.hidden = signedIn;
    const account = this.user.account;
    const open = signedIn ? account.openList() : [];
    const history = signedIn ? account.historyList().slice(0, 100) : [];
    const fills = signedIn ? account.fillList().slice(0, 100) : [];
    const balances = signedIn ? account.balanceList() : [];
    const count = this.root.querySelector("#open-count");
    if (count.textContent !== String(open.length)) count.textContent = String(open.length);

    this._table(
      "open",
      open,
      open.map((o) => `${o.orderId}:${o.executedQty}:${o.status}`).join(","),
      (o) => {
        const tr = document.createElement("tr");
        tr.dataset.orderId = String(o.orderId);
        tr.append(
          cell(dateTime(o.time)),
          cell(o.symbol),
          cell(o.type),
          cell(o.side, o.side === "BUY" ? "up" : "down"),
          cell(o.price, "num"),
          cell(o.origQty, "num"),
          cell(o.executedQty, "num"),
        );
        const td = document.createElement("td");
        const button = document.createElement("button");
        button.type = "button";
        button.className = "cancel";
        button.textContent = "Cancel";
        button.setAttribute("aria-label", `Cancel order ${o.orderId}`);
        button.addEventListener("click", () => this.cancel(o, button));
        td.append(button);
        tr.append(td);
        return tr;
      },
    );
    this._table(
      "history",
      history,
      history.map((o) => `${o.orderId}:${o.executedQty}:${o.status}`).join(","),
      (o) => {
        const tr = document.createElement("tr");
        tr.dataset.orderId = String(o.orderId);
        tr.append(
          cell(dateTime(o.updateTime || o.time)),
          cell(o.symbol),
          cell(o.type),
          cell(o.side, o.side === "BUY" ? "up" : "down"),
          cell(o.price, "num"),
          cell(o.origQty, "num"),
          cell(o.executedQty, "num"),
          cell(o.status),
        );
        return tr;
      },
    );
    this._table("fills", fills, fills.map((f) => `${f.symbol}:${f.id}`).join(","), (f) => {
      const tr = document.createElement("tr");
      tr.dataset.tradeId = String(f.id);
      tr.append(
        cell(dateTime(f.time)),
        cell(f.symbol),
        cell(f.isBuyer ? "BUY" : "SELL", f.isBuyer ? "up" : "down"),
        cell(f.price, "num"),
        cell(f.qty, "num"),
        cell(`${f.commission} ${f.commissionAsset}`, "num"),
        cell(f.isMaker ? "maker" : "taker"),
      );
      return tr;
    });
    this._table("balances", balances, balances.map((b) => `${b.asset}:${b.free}:${b.locked}`).join(","), (b) => {
      const tr = document.createElement("tr");
      tr.dataset.asset = b.asset;
      tr.append(cell(b.asset), cell(b.free, "num free"), cell(b.locked, "num locked"));
      return tr;
    });
  }

  async cancel(order, button) {
    button.disabled = true;
    try {
      const result = await this.api.cancelOrder(order.symbol, order.orderId);
      if (result && result.orderId !== undefined) {
        this.user.account.order({ ...order, ...result, updateTime: this.api.now() });
        this.user.invalidate("account");
      }
    } catch (err) {
      button.disabled = false;
      this.onError(err instanceof ApiError ? err.display : String(err));
    }
  }
}
