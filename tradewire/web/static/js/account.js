// The signed-in user's orders, fills and balances, merged from REST and the user data stream.
//
// REST answers (`/account`, `/openOrders`, `/allOrders`, `/myTrades`) and stream events
// (`executionReport`, `outboundAccountPosition`) race each other after every (re)connection, so
// every merge here is idempotent and keeps the newer of two versions: an order by its update time
// and then its executed quantity (which never decreases), a balance by its update time. Applying
// the same information twice, or in either order, ends in the same state.

import { compare } from "./decimal.js";

const OPEN = new Set(["NEW", "PARTIALLY_FILLED", "PENDING_NEW"]);
const FILL_LIMIT = 200;
const HISTORY_LIMIT = 200;

/** An executionReport as the REST order record shape. */
export function orderFromReport(ev) {
  return {
    symbol: ev.s,
    orderId: ev.i,
    clientOrderId: ev.c,
    price: ev.p,
    origQty: ev.q,
    executedQty: ev.z,
    cummulativeQuoteQty: ev.Z,
    status: ev.X,
    timeInForce: ev.f,
    type: ev.o,
    side: ev.S,
    time: ev.O,
    updateTime: ev.T || ev.E,
  };
}

/** The fill an executionReport of execution type TRADE describes, in the REST myTrades shape. */
export function fillFromReport(ev) {
  return {
    symbol: ev.s,
    id: ev.t,
    orderId: ev.i,
    price: ev.L,
    qty: ev.l,
    quoteQty: ev.Y,
    commission: ev.n,
    commissionAsset: ev.N,
    time: ev.T,
    isBuyer: ev.S === "BUY",
    isMaker: ev.m,
  };
}

function newer(a, b) {
  // true when order record a is at least as new as b
  const ta = Number(a.updateTime || a.time || 0);
  const tb = Number(b.updateTime || b.time || 0);
  if (ta !== tb) return ta > tb;
  const c = compare(a.executedQty || "0", b.executedQty || "0");
  if (c !== 0) return c > 0;
  return OPEN.has(b.status) || !OPEN.has(a.status);
}

export class Account {
  constructor() {
    this.clear();
  }

  clear() {
    this.orders = new Map(); // orderId -> record (open and ended)
    this.fills = new Map(); // `${symbol}:${id}` -> fill
    this.balances = new Map(); // asset -> {free, locked, time}
    this.loaded = false;
  }

  order(record) {
    const old = this.orders.get(record.orderId);
    if (old && !newer(record, old)) return false;
    this.orders.set(record.orderId, { ...old, ...record, stale: false });
    this._trimHistory();
    return true;
  }

  /** A full list of open orders from REST: those absent from it are no longer open. */
  openOrders(records, fetchedAt) {
    const ids = new Set(records.map((r) => r.orderId));
    for (const r of records) this.order(r);
    for (const [id, r] of this.orders) {
      if (OPEN.has(r.status) && !ids.has(id) && Number(r.updateTime || r.time || 0) < fetchedAt) {
        // it ended before the REST answer; its final executionReport or allOrders entry will say how
        this.orders.set(id, { ...r, stale: true });
      }
    }
  }

  fill(f) {
    this.fills.set(`${f.symbol}:${f.id}`, f);
    if (this.fills.size > FILL_LIMIT * 2) {
      const sorted = [...this.fills.entries()].sort((a, b) => b[1].time - a[1].time);
      this.fills = new Map(sorted.slice(0, FILL_LIMIT));
    }
  }

  balance(asset, free, locked, time) {
    const old = this.balances.get(asset);
    if (old && old.time > time) return;
    this.balances.set(asset, { free, locked, time });
  }

  /** `GET /api/v3/account`. */
  accountSnapshot(acct) {
    const time = Number(acct.updateTime || 0);
    for (const b of acct.balances) this.balance(b.asset, b.free, b.locked, time);
    this.loaded = true;
  }

  executionReport(ev) {
    const changed = this.order(orderFromReport(ev));
    if (ev.x === "TRADE") this.fill(fillFromReport(ev));
    return changed;
  }

  accountPosition(ev) {
    for (const b of ev.B) this.balance(b.a, b.f, b.l, Number(ev.u || ev.E || 0));
  }

  // -- views --------------------------------------------------------------------------------------
  openList() {
    return [...this.orders.values()]
      .filter((o) => OPEN.has(o.status) && !o.stale)
      .sort((a, b) => Number(b.time) - Number(a.time) || b.orderId - a.orderId);
  }

  historyList() {
    return [...this.orders.values()]
      .filter((o) => !OPEN.has(o.status))
      .sort((a, b) => Number(b.updateTime || b.time) - Number(a.updateTime || a.time) || b.orderId - a.orderId);
  }

  fillList() {
    return [...this.fills.values()].sort((a, b) => b.time - a.time || b.id - a.id);
  }

  balanceList() {
    return [...this.balances.entries()]
      .map(([asset, b]) => ({ asset, free: b.free, locked: b.locked }))
      .sort((a, b) => a.asset.localeCompare(b.asset));
  }

  free(asset) {
    const b = this.balances.get(asset);
    return b ? b.free : "0";
  }

  _trimHistory() {
    if (this.orders.size <= HISTORY_LIMIT * 2) return;
    const ended = [...this.orders.values()].filter((o) => !OPEN.has(o.status));
    ended.sort((a, b) => Number(a.updateTime || a.time) - Number(b.updateTime || b.time));
    for (const o of ended.slice(0, ended.length - HISTORY_LIMIT)) this.orders.delete(o.orderId);
  }
}
