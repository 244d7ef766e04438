// The top bar: market selector, 24h ticker, connection indicator, sign-in.
//
// The indicator says in words what the dot says in colour: whether the market stream is live, the
// book synchronised, the user stream connected, and the latency of the last update: the exchange's
// event time `E` to the frame that painted it, on the exchange's clock (the page measures the offset
// between its clock and the exchange's at start).

import { compact, fixed, grouped, isZero } from "../decimal.js";

function setText(el, text) {
  if (el.textContent !== text) el.textContent = text;
}

export class TickerView {
  constructor(root) {
    this.last = root.querySelector("#tk-last");
    this.change = root.querySelector("#tk-change");
    this.high = root.querySelector("#tk-high");
    this.low = root.querySelector("#tk-low");
    this.volume = root.querySelector("#tk-vol");
    this.quoteVolume = root.querySelector("#tk-qvol");
    this.volumeLabel = root.querySelector("#tk-vol-label");
    this.quoteVolumeLabel = root.querySelector("#tk-qvol-label");
    this.market = null;
  }

  setMarket(market) {
    this.market = market;
    setText(this.volumeLabel, `24h volume (${market.baseAsset})`);
    setText(this.quoteVolumeLabel, `24h volume (${market.quoteAsset})`);
    document.title = `${market.baseAsset}/${market.quoteAsset} · tradewire`;
  }

  paint(feed) {
    const t = feed.ticker;
    const d = this.market ? this.market.priceDecimals : 2;
    if (!t || isZero(t.last)) {
      for (const el of [this.last, this.change, this.high, this.low, this.volume, this.quoteVolume]) setText(el, "–");
      return;
    }
    const down = t.change.startsWith("-");
    const flat = /^-?0*(\.0*)?$/.test(t.change);
    const trend = flat ? "" : down ? "down" : "up";
    setText(this.last, grouped(fixed(t.last, d)));
    this.last.className = `tk-price ${trend}`;
    const sign = down || flat ? "" : "+";
    setText(this.change, `${sign}${grouped(fixed(t.change, d))} ${sign}${t.changePercent}%`);
    this.change.className = trend;
    setText(this.high, grouped(fixed(t.high, d)));
    setText(this.low, grouped(fixed(t.low, d)));
    setText(this.volume, compact(t.volume));
    setText(this.quoteVolume, compact(t.quoteVolume));
  }
}

export class StatusView {
  constructor(root) {
    this.root = root;
    this.text = root.querySelector("#conn-text");
    this.latency = root.querySelector("#conn-latency");
    this.user = root.querySelector("#conn-user");
    this.lastPainted = 0;
  }

  /** State words for the market stream + book. */
  static describe(feed) {
    if (feed.socketState === "waiting") return ["down", `reconnecting in ${(feed.retryIn / 1000).toFixed(1)} s`];
    if (feed.socketState !== "open") return ["down", "connecting"];
    if (!feed.sync.live) return ["sync", "syncing book"];
    return ["live", "live"];
  }

  /** Called by the frame that paints an update: exchange event time to screen, on the exchange's clock. */
  record(feed, api) {
    if (feed.lastEventTime && feed.lastEventTime !== this.lastPainted) {
      this.lastPainted = feed.lastEventTime;
      this.latencyMs = Math.max(0, Math.round(api.now() - feed.lastEventTime));
    }
  }

  paint(feed, user, api) {
    const [state, words] = StatusView.describe(feed);
    this.root.dataset.state = state;
    setText(this.text, words);
    if (this.latencyMs !== undefined) {
      setText(this.latency, `${this.latencyMs} ms`);
      this.root.dataset.latency = String(this.latencyMs);
    }
    const userWords = !api.signedIn ? "" : user.state === "open" ? "account live" : "account " + user.state;
    setText(this.user, userWords);
    this.user.dataset.state = user.state;
  }
}

/** The sign-in dialog: API key and secret, kept in this tab's sessionStorage only. */
export class SignInDialog {
  constructor(dialog, { onSubmit }) {
    this.dialog = dialog;
    this.form = dialog.querySelector("form");
    this.key = dialog.querySelector("#api-key");
    this.secret = dialog.querySelector("#api-secret");
    this.error = dialog.querySelector("#signin-error");
    this.form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const key = this.key.value.trim();
      const secret = this.secret.value.trim();
      if (!key || !secret) {
        this.showError("Enter both the API key and the secret.");
        return;
      }
      const button = this.form.querySelector("[type=submit]");
      button.disabled = true;
      try {
        await onSubmit(key, secret);
        this.secret.value = "";
        this.showError("");
        this.dialog.close();
      } catch (err) {
        this.showError(err.display || err.message || String(err));
      } finally {
        button.disabled = false;
      }
    });
    dialog.querySelector("#signin-cancel").addEventListener("click", () => dialog.close());
  }

  open() {
    this.showError("");
    this.dialog.showModal();
    this.key.focus();
  }

  showError(text) {
    this.error.textContent = text;
    this.error.hidden = !text;
  }
}
