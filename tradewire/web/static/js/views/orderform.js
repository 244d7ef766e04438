// Order entry: limit or market, buy or sell, amount presets from the balance, the API's own errors.
//
// Amounts stay decimal strings end to end: the presets compute "x % of the free balance" exactly
// (decimal.js) and floor to the lot size; the total is an exact product. The form checks only what
// it must to build a request (a positive number in each field); every rule of the market (tick,
// lot, minimum notional, balance) is the exchange's to enforce, and its answer is shown as given.

import { ApiError } from "../api.js";
import { decimalsOf, fixed, fractionToStep, isZero, mul, qtyForQuote } from "../decimal.js";

const NUMBER = /^\d+(\.\d+)?$|^\.\d+$/;

export class OrderForm {
  constructor(el, { api, user, feed, onSignIn }) {
    this.el = el;
    this.api = api;
    this.user = user;
    this.feed = feed;
    this.onSignIn = onSignIn;
    this.market = null;
    this.side = "BUY";
    this.type = "LIMIT";
    this.busy = false;
    this.price = el.querySelector("#price");
    this.amount = el.querySelector("#amount");
    this.total = el.querySelector("#total");
    this.avail = el.querySelector("#avail");
    this.submit = el.querySelector("#submit");
    this.error = el.querySelector("#form-error");
    this.ok = el.querySelector("#form-ok");
    this.priceField = el.querySelector("#price-field");
    for (const input of el.querySelectorAll("input[name=side]")) {
      input.addEventListener("change", () => {
        this.side = input.value;
        this.paint();
      });
    }
    for (const input of el.querySelectorAll("input[name=type]")) {
      input.addEventListener("change", () => {
        this.type = input.value;
        this.paint();
      });
    }
    for (const button of el.querySelectorAll("[data-pct]")) {
      button.addEventListener("click", () => this.preset(Number(button.dataset.pct)));
    }
    this.price.addEventListener("input", () => this.paintTotal());
    this.amount.addEventListener("input", () => this.paintTotal());
    el.addEventListener("submit", (event) => {
      event.preventDefault();
      this.send();
    });
  }

  setMarket(market) {
    this.market = market;
    this.price.value = "";
    this.amount.value = "";
    this.el.querySelector("#price-unit").textContent = market.quoteAsset;
    this.el.querySelector("#amount-unit").textContent = market.baseAsset;
    this.el.querySelector("#total-unit").textContent = market.quoteAsset;
    this.price.step = market.tickSize;
    this.amount.step = market.stepSize;
    this.showError("");
    this.showOk("");
    this.paint();
  }

  /** A price picked from the ladder. */
  pick(price) {
    this.price.value = price;
    if (this.type !== "LIMIT") this.el.querySelector("#type-limit").click();
    this.paintTotal();
  }

  /** The price a preset or a market order's total is based on. */
  referencePrice() {
    if (this.type === "LIMIT" && NUMBER.test(this.price.value) && !isZero(this.price.value)) return this.price.value;
    const book = this.feed.sync.book;
    const best = this.side === "BUY" ? book.asks.best() : book.bids.best();
    return best || (this.feed.lastTrade ? this.feed.lastTrade.price : null);
  }

  preset(percent) {
    const market = this.market;
    if (!market) return;
    const account = this.user.account;
    if (this.side === "SELL") {
      this.amount.value = fractionToStep(account.free(market.baseAsset), percent, market.stepSize);
    } else {
      const price = this.referencePrice();
      if (!price) {
        this.showError("No price to size the order from: enter a price first.");
        return;
      }
      this.amount.value = qtyForQuote(account.free(market.quoteAsset), percent, price, market.stepSize);
    }
    this.showError("");
    this.paintTotal();
  }

  paint() {
    const market = this.market;
    if (!market) return;
    const buy = this.side === "BUY";
    this.priceField.hidden = this.type !== "LIMIT";
    this.submit.className = `submit ${buy ? "buy" : "sell"}`;
    if (!this.api.signedIn) {
      this.submit.textContent = "Sign in to trade";
    } else {
      this.submit.textContent = `${buy ? "Buy" : "Sell"} ${market.baseAsset}`;
    }
    this.submit.disabled = this.busy;
    const asset = buy ? market.quoteAsset : market.baseAsset;
    const free = this.api.signedIn ? this.user.account.free(asset) : "–";
    const text = `${free} ${asset}`;
    if (this.avail.textContent !== text) this.avail.textContent = text;
    this.paintTotal();
  }

  paintTotal() {
    const market = this.market;
    if (!market) return;
    const price = this.referencePrice();
    const amount = this.amount.value;
    let text = "–";
    if (price && NUMBER.test(amount) && NUMBER.test(price)) {
      const total = mul(price, amount); // exact: never rounded for display
      text = (this.type === "MARKET" ? "≈ " : "") + fixed(total, Math.max(market.priceDecimals, decimalsOf(total)));
    }
    if (this.total.value !== text) this.total.value = text;
  }

  showError(text) {
    this.error.textContent = text;
    this.error.hidden = !text;
  }

  showOk(text) {
    this.ok.textContent = text;
    this.ok.hidden = !text;
  }

  async send() {
    const market = this.market;
    if (!this.api.signedIn) {
      this.onSignIn();
      return;
    }
    this.showOk("");
    const amount = this.amount.value.trim();
    const price = this.price.value.trim();
    if (this.type === "LIMIT" && !(NUMBER.test(price) && !isZero(price))) {
      this.showError("Enter a price (a positive number).");
      this.price.focus();
      return;
    }
    if (!(NUMBER.test(amount) && !isZero(amount))) {
      this.showError("Enter an amount (a positive number).");
      this.amount.focus();
      return;
    }
    const params = { symbol: market.symbol, side: this.side, type: this.type, quantity: amount };
    if (this.type === "LIMIT") {
      params.timeInForce = "GTC";
      params.price = price;
    }
    this.busy = true;
    this.paint();
    try {
      const order = await this.api.newOrder(params);
      this.showError("");
      const filled = order && order.executedQty && !isZero(order.executedQty) ? `, filled ${order.executedQty}` : "";
      this.showOk(`Order ${order ? order.orderId : ""} ${order ? order.status : "sent"}${filled}`);
      if (order && order.orderId !== undefined && order.status) {
        this.user.account.order({ ...order, time: order.transactTime, updateTime: order.transactTime });
        this.user.invalidate("account");
      }
    } catch (err) {
      this.showError(err instanceof ApiError ? err.display : String(err));
    } finally {
      this.busy = false;
      this.paint();
    }
  }
}
