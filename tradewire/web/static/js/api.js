// The REST client: Binance spot API paths, and requests signed in the page.
//
// Signed requests follow Binance's rule: the parameters (with `timestamp` and `recvWindow`) are
// URL-encoded into one query string, `signature` is the hex HMAC-SHA256 of that string under the API
// secret, and the key travels in the `X-MBX-APIKEY` header. GET and DELETE carry the parameters in
// the URL, POST and PUT in an `application/x-www-form-urlencoded` body (as ccxt and python-binance
// send them). The secret is imported once into a non-extractable Web Crypto key; it never leaves
// the browser and is kept only in sessionStorage (see session.js).

export class ApiError extends Error {
  constructor(status, code, msg) {
    super(msg);
    this.status = status;
    this.code = code;
  }

  /** What the page shows: the API's own code and message. */
  get display() {
    return this.code !== undefined && this.code !== null ? `${this.msg} (code ${this.code})` : this.msg;
  }

  get msg() {
    return this.message;
  }
}

const encoder = new TextEncoder();

function hex(buffer) {
  const bytes = new Uint8Array(buffer);
  let out = "";
  for (let i = 0; i < bytes.length; i++) out += bytes[i].toString(16).padStart(2, "0");
  return out;
}

/** URL-encode parameters in insertion order, skipping undefined/null/empty values. */
export function queryString(params) {
  const parts = [];
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined || v === null || v === "") continue;
    parts.push(`${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`);
  }
  return parts.join("&");
}

export class Api {
  constructor(base = "") {
    this.base = base;
    this.apiKey = null;
    this.hmacKey = null;
    this.clockOffset = 0; // exchange time - local time, ms
    this.recvWindow = 5000;
  }

  get signedIn() {
    return this.apiKey !== null && this.hmacKey !== null;
  }

  /** Keep credentials for signing; throws when the page cannot sign (no Web Crypto here). */
  async setCredentials(apiKey, secret) {
    if (!globalThis.crypto || !crypto.subtle) {
      throw new ApiError(0, null, "signing needs Web Crypto: open the page over https or from localhost");
    }
    this.hmacKey = await crypto.subtle.importKey(
      "raw",
      encoder.encode(secret),
      { name: "HMAC", hash: "SHA-256" },
      false,
      ["sign"],
    );
    this.apiKey = apiKey;
  }

  clearCredentials() {
    this.apiKey = null;
    this.hmacKey = null;
  }

  now() {
    return Date.now() + this.clockOffset;
  }

  /**
   * Measure the offset between this browser's clock and the exchange's, NTP-style: of a few
   * `GET /api/v3/time` round trips, trust the shortest, whose midpoint brackets the server's stamp
   * most tightly. (Used for request timestamps and the latency shown; on one machine it is ~0.)
   */
  async syncClock(samples = 5) {
    let best = null;
    for (let i = 0; i < samples; i++) {
      const t0 = performance.now();
      const { serverTime } = await this.get("/api/v3/time");
      const t1 = performance.now();
      const rtt = t1 - t0;
      const local = performance.timeOrigin + (t0 + t1) / 2;
      if (best === null || rtt < best.rtt) best = { rtt, offset: Math.round(serverTime - local) };
    }
    this.clockOffset = best.offset;
    return best;
  }

  async sign(text) {
    return hex(await crypto.subtle.sign("HMAC", this.hmacKey, encoder.encode(text)));
  }

  async request(method, path, params = {}, { signed = false, keyed = false } = {}) {
    const headers = {};
    let query = queryString(params);
    if (signed || keyed) {
      if (!this.signedIn) throw new ApiError(0, null, "sign in with an API key first");
      headers["X-MBX-APIKEY"] = this.apiKey;
    }
    if (signed) {
      const stamped = queryString({ ...params, recvWindow: this.recvWindow, timestamp: this.now() });
      query = `${stamped}&signature=${await this.sign(stamped)}`;
    }
    let url = this.base + path;
    let body;
    if (method === "POST" || method === "PUT") {
      if (query) {
        body = query;
        headers["Content-Type"] = "application/x-www-form-urlencoded";
      }
    } else if (query) {
      url += "?" + query;
    }
    let response;
    try {
      response = await fetch(url, { method, headers, body, cache: "no-store" });
    } catch (err) {
      throw new ApiError(0, null, `network error: ${err.message}`);
    }
    const text = await response.text();
    let data = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch {
      data = null;
    }
    if (!response.ok) {
      const code = data && typeof data === "object" ? data.code : null;
      const msg = data && typeof data === "object" && data.msg ? data.msg : `HTTP ${response.status}`;
      throw new ApiError(response.status, code, msg);
    }
    return data;
  }

  get(path, params) {
    return this.request("GET", path, params);
  }

  // -- public market data ------------------------------------------------------------------------
  exchangeInfo() {
    return this.get("/api/v3/exchangeInfo");
  }
  depth(symbol, limit = 1000) {
    return this.get("/api/v3/depth", { symbol, limit });
  }
  trades(symbol, limit = 100) {
    return this.get("/api/v3/trades", { symbol, limit });
  }
  klines(symbol, interval, limit = 500) {
    return this.get("/api/v3/klines", { symbol, interval, limit });
  }
  ticker24hr(symbol) {
    return this.get("/api/v3/ticker/24hr", { symbol });
  }

  // -- the signed-in user ----------------------------------------------------------------------------
  newOrder(params) {
    return this.request("POST", "/api/v3/order", { ...params, newOrderRespType: "RESULT" }, { signed: true });
  }
  cancelOrder(symbol, orderId) {
    return this.request("DELETE", "/api/v3/order", { symbol, orderId }, { signed: true });
  }
  openOrders(symbol) {
    return this.request("GET", "/api/v3/openOrders", { symbol }, { signed: true });
  }
  allOrders(symbol, limit = 100) {
    return this.request("GET", "/api/v3/allOrders", { symbol, limit }, { signed: true });
  }
  myTrades(symbol, limit = 100) {
    return this.request("GET", "/api/v3/myTrades", { symbol, limit }, { signed: true });
  }
  account() {
    return this.request("GET", "/api/v3/account", {}, { signed: true });
  }
  createListenKey() {
    return this.request("POST", "/api/v3/userDataStream", {}, { keyed: true });
  }
  keepAliveListenKey(listenKey) {
    return this.request("PUT", "/api/v3/userDataStream", { listenKey }, { keyed: true });
  }
  closeListenKey(listenKey) {
    return this.request("DELETE", "/api/v3/userDataStream", { listenKey }, { keyed: true });
  }
}
