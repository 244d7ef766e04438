// The depth chart: cumulative bid and ask quantity against price, drawn on a canvas.
//
// Drawing only, so floats are fine here: the curve is a picture of the book, not an amount anyone
// acts on. The canvas follows its box (ResizeObserver) at the device's pixel ratio.

const LEVELS = 100;
const MAX_REACH = 0.005; // 0.5 % either side of the mid

/** Cumulative steps of one side, best first: [[price, cumulative], ...] as numbers (display only). */
export function cumulative(side, limit) {
  const out = [];
  let sum = 0;
  const n = Math.min(limit, side.size);
  for (let i = 0; i < n; i++) {
    const p = side.prices[i];
    sum += Number(side.qty.get(p));
    out.push([Number(p), sum]);
  }
  return out;
}

export class DepthChartView {
  constructor(canvas, colors) {
    this.canvas = canvas;
    this.ctx = canvas.getContext("2d");
    this.colors = colors;
    this.width = 0;
    this.height = 0;
    this.feed = null;
    new ResizeObserver(() => {
      this._resize();
      if (this.feed) this.paint(this.feed);
    }).observe(canvas);
    this._resize();
  }

  _resize() {
    const ratio = window.devicePixelRatio || 1;
    const rect = this.canvas.getBoundingClientRect();
    this.width = Math.max(1, Math.round(rect.width));
    this.height = Math.max(1, Math.round(rect.height));
    this.canvas.width = Math.round(this.width * ratio);
    this.canvas.height = Math.round(this.height * ratio);
    this.ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  }

  paint(feed) {
    this.feed = feed;
    const { ctx, width, height, colors } = this;
    ctx.clearRect(0, 0, width, height);
    const book = feed.sync.book;
    const bids = cumulative(book.bids, LEVELS);
    const asks = cumulative(book.asks, LEVELS);
    if (!bids.length && !asks.length) {
      ctx.fillStyle = colors.muted;
      ctx.font = "12px system-ui, sans-serif";
      ctx.textAlign = "center";
      ctx.fillText("No orders in the book", width / 2, height / 2);
      return;
    }
    const bestBid = bids.length ? bids[0][0] : asks[0][0];
    const bestAsk = asks.length ? asks[0][0] : bids[0][0];
    const mid = (bestBid + bestAsk) / 2;
    // symmetric price range around the mid: wide enough for the deeper side shown, but at most
    // MAX_REACH of the mid, so that a few far-away orders do not squeeze the book into a sliver
    const reach = Math.min(
      Math.max(
        bids.length ? mid - bids[bids.length - 1][0] : 0,
        asks.length ? asks[asks.length - 1][0] - mid : 0,
        mid * 0.0005,
      ),
      mid * MAX_REACH,
    );
    const lo = mid - reach;
    const hi = mid + reach;
    const within = (points, inside) => {
      let last = 0;
      for (const [price, qty] of points) if (inside(price)) last = qty;
      return last;
    };
    const maxQty = Math.max(
      within(bids, (p) => p >= lo),
      within(asks, (p) => p <= hi),
      Number.MIN_VALUE,
    );
    const pad = 18;
    const h = height - pad;
    const x = (price) => ((price - lo) / (hi - lo)) * width;
    const y = (qty) => h - (qty / maxQty) * (h - 6);
    this._side(bids, x, y, h, colors.up, colors.upFill, true);
    this._side(asks, x, y, h, colors.down, colors.downFill, false);
    ctx.fillStyle = colors.muted;
    ctx.font = "11px system-ui, sans-serif";
    ctx.textBaseline = "bottom";
    ctx.textAlign = "left";
    ctx.fillText(lo.toPrecision(6), 2, height - 2);
    ctx.textAlign = "center";
    ctx.fillText(mid.toPrecision(6), width / 2, height - 2);
    ctx.textAlign = "right";
    ctx.fillText(hi.toPrecision(6), width - 2, height - 2);
  }

  _side(points, x, y, h, stroke, fill, isBid) {
    if (!points.length) return;
    const ctx = this.ctx;
    ctx.beginPath();
    ctx.moveTo(x(points[0][0]), h);
    let prevY = h;
    for (const [price, qty] of points) {
      const px = x(price);
      ctx.lineTo(px, prevY);
      prevY = y(qty);
      ctx.lineTo(px, prevY);
    }
    const edge = isBid ? 0 : this.width;
    ctx.lineTo(edge, prevY);
    ctx.strokeStyle = stroke;
    ctx.lineWidth = 1.5;
    ctx.stroke();
    ctx.lineTo(edge, h);
    ctx.closePath();
    ctx.fillStyle = fill;
    ctx.fill();
  }
}
