// The signed-in user's live feed: a listenKey, its `/ws/<listenKey>` stream, and REST refetches.
//
// Binance's procedure: POST /api/v3/userDataStream gives a listenKey, valid for 60 minutes unless
// kept alive with PUT (done every 30 minutes); the stream delivers `executionReport` and
// `outboundAccountPosition`. At every (re)connection the page refetches the account, the open
// orders, and the current market's order history and fills, so that whatever happened while it was
// disconnected shows up; Account's merges make the overlap harmless. A key that keeps failing to
// connect (e.g. it expired while the gateway was down) is replaced by a new one. An API key the
// exchange no longer accepts (revoked: its stream was closed) ends the feed and is reported through
// `onRejected`, instead of asking for listen keys forever.

import { ApiError } from "./api.js";
import { Account } from "./account.js";
import { Backoff, Socket, socketUrl } from "./socket.js";

const KEEPALIVE_MS = 30 * 60 * 1000;

export class UserFeed {
  constructor(api, invalidate) {
    this.api = api;
    this.invalidate = invalidate;
    this.account = new Account();
    this.symbol = null;
    this.listenKey = null;
    this.failures = 0;
    this.state = "signed-out"; // signed-out | connecting | open | waiting
    this.keepAliveTimer = null;
    this.keyTimer = null;
    this.keyBackoff = new Backoff(1000, 15000);
    this.active = false;
    // Bumped at every start and stop: an answer asked for in an earlier session (another user's,
    // signed out meanwhile in this tab) is dropped when it lands, never shown as this one's.
    this.session = 0;
    this.onRejected = () => {};
    this.socket = new Socket({
      url: () => socketUrl(`/ws/${this.listenKey}`),
      onOpen: () => {
        this.failures = 0;
        this.refresh();
      },
      onMessage: (msg) => this._onMessage(msg),
      onStatus: (s) => {
        this.state = s.state === "closed" ? (this.active ? "waiting" : "signed-out") : s.state;
        if (s.state === "waiting" && ++this.failures % 3 === 0) this._renewKey();
        this.invalidate("status");
      },
    });
  }

  async start(symbol) {
    this.symbol = symbol;
    this.active = true;
    this.session += 1;
    this.account.clear();
    this.state = "connecting";
    this.invalidate("account");
    this.invalidate("status");
    await this._openWithNewKey();
  }

  stop() {
    this.active = false;
    this.session += 1;
    clearInterval(this.keepAliveTimer);
    clearTimeout(this.keyTimer);
    this.socket.stop();
    if (this.listenKey) this.api.closeListenKey(this.listenKey).catch(() => {});
    this.listenKey = null;
    this.account.clear();
    this.state = "signed-out";
    this.invalidate("account");
    this.invalidate("status");
  }

  setSymbol(symbol) {
    this.symbol = symbol;
    if (this.active) this.refreshMarket();
  }

  async _openWithNewKey() {
    if (!this.active) return;
    const session = this.session;
    try {
      const { listenKey } = await this.api.createListenKey();
      if (session !== this.session) return;
      this.listenKey = listenKey;
      this.keyBackoff.reset();
    } catch (err) {
      if (session !== this.session) return;
      console.warn(`tradewire: listenKey: ${err.message}`);
      if (this._rejected(err)) return;
      this.state = "waiting";
      this.invalidate("status");
      clearTimeout(this.keyTimer);
      this.keyTimer = setTimeout(() => this._openWithNewKey(), this.keyBackoff.next());
      return;
    }
    clearInterval(this.keepAliveTimer);
    this.keepAliveTimer = setInterval(() => {
      if (this.listenKey) this.api.keepAliveListenKey(this.listenKey).catch(() => this._renewKey());
    }, KEEPALIVE_MS);
    this.socket.restart();
  }

  async _renewKey() {
    if (!this.active) return;
    const session = this.session;
    try {
      const { listenKey } = await this.api.createListenKey();
      if (session === this.session) this.listenKey = listenKey; // the next connection attempt uses it
    } catch (err) {
      if (session === this.session) this._rejected(err); // else the socket retries; so do later failures
    }
  }

  /** Whether `err` says the API key itself is refused (-2014, -2015: HTTP 401); if so, stop. */
  _rejected(err) {
    if (!(err instanceof ApiError && err.status === 401) || !this.active) return false;
    this.stop();
    this.onRejected(err);
    return true;
  }

  /** Refetch everything the stream may have missed. */
  async refresh() {
    await Promise.all([this.refreshAccount(), this.refreshOpen(), this.refreshMarket()]);
  }

  async refreshAccount() {
    const session = this.session;
    try {
      const account = await this.api.account();
      if (session !== this.session) return;
      this.account.accountSnapshot(account);
      this.invalidate("account");
    } catch (err) {
      console.warn(`tradewire: account: ${err.message}`);
    }
  }

  async refreshOpen() {
    const session = this.session;
    try {
      const fetchedAt = this.api.now();
      const open = await this.api.openOrders();
      if (session !== this.session) return;
      this.account.openOrders(open, fetchedAt - 1000);
      this.invalidate("account");
    } catch (err) {
      console.warn(`tradewire: openOrders: ${err.message}`);
    }
  }

  async refreshMarket() {
    const symbol = this.symbol;
    const session = this.session;
    try {
      const [orders, fills] = await Promise.all([this.api.allOrders(symbol), this.api.myTrades(symbol)]);
      if (session !== this.session) return;
      for (const o of orders) this.account.order(o);
      for (const f of fills) this.account.fill({ ...f, symbol: f.symbol || symbol });
      this.invalidate("account");
    } catch (err) {
      console.warn(`tradewire: history: ${err.message}`);
    }
  }

  _onMessage(msg) {
    const ev = msg && msg.data && msg.data.e ? msg.data : msg; // plain or combined payloads
    if (!ev || !ev.e) return;
    if (ev.e === "executionReport") {
      this.account.executionReport(ev);
      this.invalidate("account");
    } else if (ev.e === "outboundAccountPosition") {
      this.account.accountPosition(ev);
      this.invalidate("account");
    } else if (ev.e === "listenKeyExpired") {
      this._renewKey().then(() => this.socket.restart());
    }
  }
}
