// A WebSocket that comes back by itself: reconnects with exponential backoff and jitter.
//
// It also reads tradewire's batched frames (a JSON array of messages in one frame, which a client
// opts into with `batch=true`): one frame, one task, however many messages, which spares the
// browser most of its per-message cost under a flood. Plain frames work the same.
//
// The socket only moves frames. What a (re)connection means (resubscribe, resnapshot the book,
// refetch the account) is the owner's business, told through `onOpen`; every frame goes to
// `onMessage` already parsed. `onStatus` reports {state: connecting|open|waiting|closed, retryIn}.

export class Backoff {
  constructor(baseMs = 500, maxMs = 15000) {
    this.baseMs = baseMs;
    this.maxMs = maxMs;
    this.attempt = 0;
  }

  /** The next delay: base * 2^attempt, capped, with up to 30 % jitter so that clients spread out. */
  next() {
    const raw = Math.min(this.maxMs, this.baseMs * 2 ** this.attempt);
    this.attempt++;
    return Math.round(raw * (0.7 + Math.random() * 0.3));
  }

  reset() {
    this.attempt = 0;
  }
}

/** ws:// or wss:// URL for a path on the page's own origin. */
export function socketUrl(path) {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}${path}`;
}

export class Socket {
  constructor({ url, onOpen, onMessage, onStatus, stableMs = 5000 }) {
    this.url = url; // string or () => string, read at every connection
    this.onOpen = onOpen || (() => {});
    this.onMessage = onMessage;
    this.onStatus = onStatus || (() => {});
    this.backoff = new Backoff();
    this.stableMs = stableMs; // an open connection that lasted this long resets the backoff
    this.ws = null;
    this.timer = null;
    this.stopped = true;
    this.connections = 0;
  }

  start() {
    this.stopped = false;
    this._connect();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    if (this.ws) {
      this.ws.onclose = null;
      this.ws.onmessage = null; // nothing from a connection that was let go reaches the owner
      this.ws.close(1000);
      this.ws = null;
    }
    this.onStatus({ state: "closed" });
  }

  /** Drop the connection and open a new one at once (e.g. the set of streams changed). */
  restart() {
    this.stop();
    this.backoff.reset();
    this.start();
  }

  send(obj) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) {
      this.ws.send(JSON.stringify(obj));
      return true;
    }
    return false;
  }

  get isOpen() {
    return this.ws !== null && this.ws.readyState === WebSocket.OPEN;
  }

  _connect() {
    if (this.stopped) return;
    const url = typeof this.url === "function" ? this.url() : this.url;
    this.onStatus({ state: "connecting" });
    let ws;
    try {
      ws = new WebSocket(url);
    } catch {
      this._retry();
      return;
    }
    this.ws = ws;
    let openedAt = 0;
    ws.onopen = () => {
      openedAt = performance.now();
      this.connections++;
      this.onStatus({ state: "open" });
      this.onOpen(this.connections > 1);
    };
    ws.onmessage = (event) => {
      let msg;
      try {
        msg = JSON.parse(event.data);
      } catch {
        return;
      }
      if (Array.isArray(msg)) {
        for (let i = 0; i < msg.length; i++) this.onMessage(msg[i]); // a batched frame
      } else {
        this.onMessage(msg);
      }
    };
    ws.onclose = () => {
      if (this.ws !== ws) return;
      this.ws = null;
      if (openedAt && performance.now() - openedAt > this.stableMs) this.backoff.reset();
      this._retry();
    };
    ws.onerror = () => {}; // onclose follows
  }

  _retry() {
    if (this.stopped) return;
    const delay = this.backoff.next();
    this.onStatus({ state: "waiting", retryIn: delay });
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this._connect(), delay);
  }
}
