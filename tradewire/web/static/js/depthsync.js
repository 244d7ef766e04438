// Keeping a local book equal to the exchange's: the snapshot + diff procedure, without I/O.
//
// Theory of operation (Binance's documented procedure, plus tradewire's `pu` and `cs` checks):
//
// 1. `start()`: the stream is open (or just reopened); diffs are buffered, the book is not trusted.
//    The shell then fetches a REST snapshot (`GET /api/v3/depth`, with `lastUpdateId`).
// 2. `snapshot(s)`: diffs with `u <= lastUpdateId` are already in it and are dropped. If the oldest
//    remaining diff starts after `lastUpdateId + 1`, the snapshot is older than the stream: the
//    result says `refetch` and the shell asks for a newer one. Otherwise the remaining diffs are
//    applied and the book is live.
// 3. `diff(d)` while live: a diff continues the book when its `pu` (the previous diff's `u`) equals
//    the last applied `u` (without `pu`: when `U == u + 1`); the first diff after the snapshot only
//    needs `U <= lastUpdateId + 1 <= u`. Levels carry absolute quantities, so a diff that straddles
//    the snapshot applies cleanly. After each diff, when it carries `cs`, the CRC32 of the book's top
//    levels must equal it.
//
// Any failure (a gap, a checksum mismatch, a buffer overflow) returns `{resync: reason}`: the shell
// calls `start()` again and fetches a new snapshot, after a backoff when resyncs repeat. The book
// keeps its last contents while resyncing so that the screen does not blank, but `live` says it is
// not to be trusted.

import { Book } from "./book.js";

export const MAX_BUFFERED = 20000;

export class DepthSync {
  constructor() {
    this.book = new Book();
    this.state = "idle"; // idle | buffering | live
    this.buffer = [];
    this.first = false; // next diff is the first after the snapshot
    this.lastEventTime = 0;
    this.applied = 0; // diffs applied since the page loaded (for the tests and the indicator)
    this.checksums = 0; // checksums verified
  }

  get live() {
    return this.state === "live";
  }

  start() {
    this.state = "buffering";
    this.buffer = [];
    this.first = false;
  }

  stop() {
    this.state = "idle";
    this.buffer = [];
  }

  /** A REST depth snapshot {lastUpdateId, bids, asks}. Returns {ok} | {refetch} | {resync}. */
  snapshot(snap) {
    if (this.state !== "buffering") return { ok: false, ignored: true };
    const last = Number(snap.lastUpdateId);
    const pending = this.buffer.filter((d) => d.u > last);
    if (pending.length && pending[0].U > last + 1) {
      return { refetch: `snapshot ${last} is older than the stream (next diff starts at ${pending[0].U})` };
    }
    this.book.load({ lastUpdateId: last, bids: snap.bids, asks: snap.asks });
    this.buffer = [];
    this.state = "live";
    this.first = true;
    for (const d of pending) {
      const result = this.diff(d);
      if (result.resync) return result;
    }
    return { ok: true };
  }

  /** One depth diff {U, u, pu?, cs?, b, a, E}. Returns {ok} | {buffered} | {stale} | {resync}. */
  diff(d) {
    if (this.state === "buffering") {
      this.buffer.push(d);
      if (this.buffer.length > MAX_BUFFERED) return { resync: "too many diffs while waiting for the snapshot" };
      return { buffered: true };
    }
    if (this.state !== "live") return { ignored: true };
    const book = this.book;
    const last = book.lastUpdateId;
    if (d.u <= last) return { stale: true };
    if (this.first) {
      if (d.U > last + 1) return this._fail(`gap: diff starts at ${d.U}, the book is at ${last}`);
    } else if (d.pu !== undefined && d.pu !== null) {
      if (d.pu !== last) return this._fail(`gap: diff follows ${d.pu}, the book is at ${last}`);
    } else if (d.U !== last + 1) {
      return this._fail(`gap: diff starts at ${d.U}, the book is at ${last}`);
    }
    book.apply(d.b, d.a);
    book.lastUpdateId = d.u;
    this.first = false;
    this.applied++;
    if (d.E) this.lastEventTime = d.E;
    if (d.cs !== undefined && d.cs !== null) {
      const mine = book.checksum();
      if (mine !== Number(d.cs)) return this._fail(`checksum mismatch at ${d.u}: ${mine} != ${d.cs}`);
      this.checksums++;
    }
    return { ok: true };
  }

  _fail(reason) {
    this.state = "idle";
    return { resync: reason };
  }
}
