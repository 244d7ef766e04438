// The page's local copy of one market's aggregated book, and its checksum.
//
// A side maps price text -> qty text (both canonical, exactly as the API writes them) and keeps its
// prices sorted best first, so that the top levels, the ladder and the checksum need no sort per
// update. Activity clusters at the top of the book, where a binary-searched insert or delete moves
// few entries. Quantities are never summed here; grouping for display lives in ladder.js.

import { canonical, isZero } from "./decimal.js";
import { crc32 } from "./crc32.js";

/** Levels per side the checksum covers (tradewire's CHECKSUM_DEPTH). */
export const CHECKSUM_DEPTH = 25;

export class BookSide {
  constructor(isBid) {
    this.isBid = isBid;
    this.qty = new Map(); // price text -> qty text
    this.prices = []; // price texts, best first
    this.keys = []; // Number(price) of each, best first: descending for bids, ascending for asks
  }

  clear() {
    this.qty.clear();
    this.prices = [];
    this.keys = [];
  }

  get size() {
    return this.prices.length;
  }

  /** Index where `key` sits or would sit in best-first order. */
  _search(key) {
    const keys = this.keys;
    let lo = 0;
    let hi = keys.length;
    if (this.isBid) {
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (keys[mid] > key) lo = mid + 1;
        else hi = mid;
      }
    } else {
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (keys[mid] < key) lo = mid + 1;
        else hi = mid;
      }
    }
    return lo;
  }

  /** Set one level to its new absolute qty; a zero qty removes it. */
  set(priceText, qtyText) {
    const price = canonical(priceText);
    const had = this.qty.has(price);
    if (isZero(qtyText)) {
      if (!had) return;
      this.qty.delete(price);
      const i = this._search(Number(price));
      this.prices.splice(i, 1);
      this.keys.splice(i, 1);
      return;
    }
    this.qty.set(price, canonical(qtyText));
    if (!had) {
      const key = Number(price);
      const i = this._search(key);
      this.prices.splice(i, 0, price);
      this.keys.splice(i, 0, key);
    }
  }

  /** Replace everything with `levels` ([[price, qty], ...], any order). */
  load(levels) {
    this.clear();
    const entries = [];
    for (const [p, q] of levels) {
      if (isZero(q)) continue;
      const price = canonical(p);
      this.qty.set(price, canonical(q));
      entries.push([Number(price), price]);
    }
    entries.sort(this.isBid ? (a, b) => b[0] - a[0] : (a, b) => a[0] - b[0]);
    this.keys = entries.map((e) => e[0]);
    this.prices = entries.map((e) => e[1]);
  }

  /** The best `limit` levels as [[price, qty], ...], best first. */
  top(limit) {
    const n = Math.min(limit, this.prices.length);
    const out = new Array(n);
    for (let i = 0; i < n; i++) {
      const p = this.prices[i];
      out[i] = [p, this.qty.get(p)];
    }
    return out;
  }

  best() {
    return this.prices.length ? this.prices[0] : null;
  }
}

export class Book {
  constructor() {
    this.bids = new BookSide(true);
    this.asks = new BookSide(false);
    this.lastUpdateId = 0;
  }

  load(snapshot) {
    this.bids.load(snapshot.bids);
    this.asks.load(snapshot.asks);
    this.lastUpdateId = snapshot.lastUpdateId;
  }

  clear() {
    this.bids.clear();
    this.asks.clear();
    this.lastUpdateId = 0;
  }

  /** Apply a depth diff's levels (absolute quantities). */
  apply(bids, asks) {
    for (let i = 0; i < bids.length; i++) this.bids.set(bids[i][0], bids[i][1]);
    for (let i = 0; i < asks.length; i++) this.asks.set(asks[i][0], asks[i][1]);
  }

  /** bid1price:bid1qty:ask1price:ask1qty:... over the top CHECKSUM_DEPTH levels of each side. */
  checksumText() {
    const bids = this.bids;
    const asks = this.asks;
    const n = Math.max(Math.min(bids.size, CHECKSUM_DEPTH), Math.min(asks.size, CHECKSUM_DEPTH));
    const parts = [];
    for (let i = 0; i < n; i++) {
      if (i < bids.size && i < CHECKSUM_DEPTH) {
        const p = bids.prices[i];
        parts.push(p, bids.qty.get(p));
      }
      if (i < asks.size && i < CHECKSUM_DEPTH) {
        const p = asks.prices[i];
        parts.push(p, asks.qty.get(p));
      }
    }
    return parts.join(":");
  }

  checksum() {
    return crc32(this.checksumText());
  }
}
