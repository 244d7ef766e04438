// One market's live data: the combined stream, the book procedure, the tape, candles and ticker.
//
// This is the shell around DepthSync: it opens `/stream?streams=<s>@depth@100ms/<s>@trade/
// <s>@kline_<i>/<s>@ticker`, fetches snapshots when DepthSync asks, and refetches what a reconnect
// may have missed (trades, candles, the ticker). Every message is applied to state as it arrives;
// nothing here touches the DOM: `invalidate(part)` asks the page to repaint that part in the next
// animation frame, so a burst of a thousand messages costs one paint.

import { DepthSync } from "./depthsync.js";
import { Backoff, Socket, socketUrl } from "./socket.js";

export const INTERVALS = ["1s", "1m", "5m", "15m", "1h", "4h", "1d", "1w", "1M"];
// (the gateway serves all of Binance's intervals, 1s to 1M; the picker offers the common ones)
const TAPE_SIZE = 80;

/** A REST kline array or a stream kline object as one bar {time (s), open, high, low, close, volume}. */
export function barFromRest(k) {
  return { time: Math.floor(k[0] / 1000), open: k[1], high: k[2], low: k[3], close: k[4], volume: k[5] };
}

export function barFromStream(k) {
  return { time: Math.floor(k.t / 1000), open: k.o, high: k.h, low: k.l, close: k.c, volume: k.v };
}

/** A 24hr ticker, REST or stream, in one shape. */
export function tickerFromRest(t) {
  return {
    last: t.lastPrice,
    change: t.priceChange,
    changePercent: t.priceChangePercent,
    high: t.highPrice,
    low: t.lowPrice,
    volume: t.volume,
    quoteVolume: t.quoteVolume,
    time: t.closeTime,
  };
}

export function tickerFromStream(t) {
  return {
    last: t.c,
    change: t.p,
    changePercent: t.P,
    high: t.h,
    low: t.l,
    volume: t.v,
    quoteVolume: t.q,
    time: t.E,
  };
}

export class MarketFeed {
  constructor(api, invalidate) {
    this.api = api;
    this.invalidate = invalidate;
    this.symbol = null;
    this.interval = "1m";
    this.sync = new DepthSync();
    this.trades = []; // newest first: {id, price, qty, time, sell}
    this.tradeIds = new Set();
    this.bars = []; // oldest first, from REST
    this.pendingBars = new Map(); // time -> bar from the stream, not painted yet
    this.barsLoaded = false;
    this.barsVersion = 0; // bumps when `bars` is replaced wholesale
    this.ticker = null;
    this.lastTrade = null;
    this.socketState = "closed";
    this.retryIn = 0;
    this.lastEventTime = 0; // exchange time (E) of the last applied update
    this.messages = 0;
    this.rate = 0; // messages per second, over the last second
    let counted = 0;
    setInterval(() => {
      this.rate = this.messages - counted;
      counted = this.messages;
    }, 1000);
    this.resyncs = 0;
    this.lastResync = "";
    this.generation = 0; // bumps on every (re)start, so late REST answers of an older one are dropped
    this.snapshotBackoff = new Backoff(250, 5000);
    this.snapshotTimer = null;
    this.subscribeId = 1;
    this.socket = new Socket({
      // batch=true: tradewire's batched frames (socket.js); a Binance endpoint ignores the parameter
      url: () => socketUrl(`/stream?streams=${this.streams().join("/")}&batch=true`),
      onOpen: () => this._onOpen(),
      onMessage: (msg) => this._onMessage(msg),
      onStatus: (s) => {
        this.socketState = s.state;
        this.retryIn = s.retryIn || 0;
        if (s.state !== "open" && this.sync.state !== "idle") this.sync.stop();
        this.invalidate("status");
        this.invalidate("book");
      },
    });
  }

  streams() {
    const s = this.symbol.toLowerCase();
    return [`${s}@depth@100ms`, `${s}@trade`, `${s}@kline_${this.interval}`, `${s}@ticker`];
  }

  /** Switch to a market (also the first start). */
  open(symbol) {
    this.symbol = symbol;
    this.generation++; // what is still on its way for the market left is not this one's
    this.sync = new DepthSync();
    this.trades = [];
    this.tradeIds.clear();
    this.bars = [];
    this.pendingBars.clear();
    this.barsLoaded = false;
    this.barsVersion++;
    this.ticker = null;
    this.lastTrade = null;
    this.socket.restart();
    for (const part of ["book", "tape", "chart", "ticker", "status"]) this.invalidate(part);
  }

  setInterval(interval) {
    if (interval === this.interval) return;
    const s = this.symbol.toLowerCase();
    const old = `${s}@kline_${this.interval}`;
    this.interval = interval;
    this.pendingBars.clear();
    this.barsLoaded = false;
    this.socket.send({ method: "UNSUBSCRIBE", params: [old], id: this.subscribeId++ });
    this.socket.send({ method: "SUBSCRIBE", params: [`${s}@kline_${interval}`], id: this.subscribeId++ });
    this._loadBars(this.generation);
  }

  // -- (re)connection --------------------------------------------------------------------------
  _onOpen() {
    const generation = ++this.generation;
    this._resnapshot("connected");
    this._loadBars(generation);
    this._loadTrades(generation);
    this._loadTicker(generation);
  }

  _resnapshot(reason, delayMs = 0) {
    const generation = this.generation;
    this.sync.start();
    this.lastResync = reason;
    clearTimeout(this.snapshotTimer);
    this.snapshotTimer = setTimeout(() => this._fetchSnapshot(generation), delayMs);
    this.invalidate("status");
  }

  async _fetchSnapshot(generation) {
    if (generation !== this.generation || this.sync.state !== "buffering") return;
    let snap;
    try {
      snap = await this.api.depth(this.symbol, 1000);
    } catch (err) {
      if (generation !== this.generation) return;
      this._resnapshot(`snapshot failed: ${err.message}`, this.snapshotBackoff.next());
      return;
    }
    if (generation !== this.generation || this.sync.state !== "buffering") return;
    const result = this.sync.snapshot(snap);
    if (result.refetch) {
      this.snapshotTimer = setTimeout(() => this._fetchSnapshot(generation), this.snapshotBackoff.next());
      return;
    }
    if (result.resync) {
      this._onResync(result.resync);
      return;
    }
    this.snapshotBackoff.reset();
    this.invalidate("book");
    this.invalidate("status");
  }

  _onResync(reason) {
    this.resyncs++;
    console.warn(`tradewire: book resync (${reason})`);
    this._resnapshot(reason, this.resyncs > 1 ? this.snapshotBackoff.next() : 0);
  }

  async _loadBars(generation) {
    const interval = this.interval;
    try {
      const rows = await this.api.klines(this.symbol, interval, 500);
      if (generation !== this.generation || interval !== this.interval) return;
      this.bars = rows.map(barFromRest);
      this.barsLoaded = true;
      this.barsVersion++;
      // stream bars that arrived meanwhile are newer than (or equal to) what REST gave
      const lastTime = this.bars.length ? this.bars[this.bars.length - 1].time : 0;
      for (const [time] of this.pendingBars) if (time < lastTime) this.pendingBars.delete(time);
      this.invalidate("chart");
    } catch (err) {
      console.warn(`tradewire: klines: ${err.message}`);
    }
  }

  async _loadTrades(generation) {
    try {
      const rows = await this.api.trades(this.symbol, TAPE_SIZE);
      if (generation !== this.generation) return;
      for (const t of rows) {
        this._addTrade({ id: t.id, price: t.price, qty: t.qty, time: t.time, sell: t.isBuyerMaker });
      }
      this.invalidate("tape");
    } catch (err) {
      console.warn(`tradewire: trades: ${err.message}`);
    }
  }

  async _loadTicker(generation) {
    try {
      const t = await this.api.ticker24hr(this.symbol);
      if (generation !== this.generation) return;
      if (!this.ticker || this.ticker.time <= t.closeTime) this.ticker = tickerFromRest(t);
      this.invalidate("ticker");
    } catch (err) {
      console.warn(`tradewire: ticker: ${err.message}`);
    }
  }

  // -- messages ---------------------------------------------------------------------------------
  _onMessage(msg) {
    const data = msg.data;
    if (!data || typeof data !== "object") return; // replies to SUBSCRIBE and friends
    if (data.s && data.s !== this.symbol) return;
    this.messages++;
    switch (data.e) {
      case "depthUpdate": {
        const result = this.sync.diff(data);
        if (result.resync) this._onResync(result.resync);
        else if (result.ok) {
          this.lastEventTime = data.E;
          this.invalidate("book");
          this.invalidate("status");
        }
        break;
      }
      case "trade":
        this._addTrade({ id: data.t, price: data.p, qty: data.q, time: data.T, sell: data.m });
        this.lastEventTime = data.E;
        this.invalidate("tape");
        this.invalidate("status");
        break;
      case "kline":
        if (data.k.i !== this.interval) break;
        this.pendingBars.set(Math.floor(data.k.t / 1000), barFromStream(data.k));
        this.invalidate("chart");
        break;
      case "24hrTicker":
        this.ticker = tickerFromStream(data);
        this.invalidate("ticker");
        break;
      case "resnapshot":
        this._onServerResnapshot(String(data.stream || msg.stream || ""), data.reason);
        break;
      default:
        break;
    }
  }

  /**
   * The exchange says what the page holds of one stream cannot be continued: a gap the gateway could
   * not fill, or a new epoch (Redis lost data; update and trade ids start again from lower values,
   * so the messages after this one would look old). Start that stream over from REST.
   */
  _onServerResnapshot(stream, reason) {
    const why = `resnapshot: ${reason || "asked by the exchange"}`;
    if (stream.includes("@depth")) {
      this._onResync(why);
    } else if (stream.endsWith("@trade")) {
      this.trades = [];
      this.tradeIds.clear();
      this.lastTrade = null;
      this.invalidate("tape");
      this._loadTrades(this.generation);
    } else if (stream.includes("@kline_")) {
      this.pendingBars.clear();
      this.barsLoaded = false;
      this._loadBars(this.generation);
    } else if (stream.endsWith("@ticker")) {
      this._loadTicker(this.generation);
    }
  }

  _addTrade(trade) {
    if (this.tradeIds.has(trade.id)) return;
    this.tradeIds.add(trade.id);
    const trades = this.trades;
    if (!trades.length || trade.id > trades[0].id) {
      trades.unshift(trade);
      this.lastTrade = trade;
    } else {
      let i = 0;
      while (i < trades.length && trades[i].id > trade.id) i++;
      trades.splice(i, 0, trade);
    }
    if (trades.length > TAPE_SIZE * 2) {
      for (const t of trades.splice(TAPE_SIZE)) this.tradeIds.delete(t.id);
    }
  }

  /** Take the stream's bars not yet painted, oldest first (only once the REST history is in). */
  takeBars() {
    if (!this.barsLoaded || !this.pendingBars.size) return [];
    const bars = [...this.pendingBars.values()].sort((a, b) => a.time - b.time);
    this.pendingBars.clear();
    return bars;
  }
}
