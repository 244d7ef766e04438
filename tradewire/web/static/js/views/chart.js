// The candlestick chart with volume, drawn by TradingView's lightweight-charts (the standalone build,
// loaded by index.html as the global `LightweightCharts`), and the interval switcher.
//
// The library plots numbers, so bars cross into floats here, for drawing only. The REST history is
// set once per market or interval (`barsVersion`); afterwards each paint feeds the bars the stream
// delivered since the previous frame to `update`, which redraws the live last bar or appends one.

export class ChartView {
  constructor(container, colors) {
    this.container = container;
    this.colors = colors;
    this.version = -1;
    this.lastTime = 0;
    this.bars = 0;
    this.last = null; // the last bar drawn
    const LC = globalThis.LightweightCharts;
    if (!LC) {
      container.textContent = "The chart library is missing: run the install step (scripts/web-install).";
      this.chart = null;
      return;
    }
    this.chart = LC.createChart(container, {
      autoSize: true,
      layout: {
        background: { type: "solid", color: colors.panel },
        textColor: colors.muted,
        fontFamily: "system-ui, sans-serif",
        attributionLogo: true,
      },
      grid: { vertLines: { color: colors.grid }, horzLines: { color: colors.grid } },
      rightPriceScale: { borderColor: colors.border },
      timeScale: { borderColor: colors.border, timeVisible: true, secondsVisible: false },
      crosshair: { mode: LC.CrosshairMode ? LC.CrosshairMode.Normal : 0 },
    });
    this.candles = this.chart.addSeries(LC.CandlestickSeries, {
      upColor: colors.up,
      downColor: colors.down,
      borderVisible: false,
      wickUpColor: colors.up,
      wickDownColor: colors.down,
    });
    this.volume = this.chart.addSeries(LC.HistogramSeries, {
      priceFormat: { type: "volume" },
      priceScaleId: "",
      lastValueVisible: false,
      priceLineVisible: false,
    });
    this.volume.priceScale().applyOptions({ scaleMargins: { top: 0.8, bottom: 0 } });
    this.empty = document.createElement("p");
    this.empty.className = "chart-empty";
    this.empty.textContent = "No trades yet";
    container.append(this.empty);
    this.candles.priceScale().applyOptions({ scaleMargins: { top: 0.08, bottom: 0.25 } });
  }

  setMarket(market) {
    if (!this.chart) return;
    const decimals = market.priceDecimals;
    this.candles.applyOptions({
      priceFormat: { type: "price", precision: decimals, minMove: Number(market.tickSize) },
    });
  }

  _candle(bar) {
    return {
      time: bar.time,
      open: Number(bar.open),
      high: Number(bar.high),
      low: Number(bar.low),
      close: Number(bar.close),
    };
  }

  _volume(bar) {
    const up = Number(bar.close) >= Number(bar.open);
    return { time: bar.time, value: Number(bar.volume), color: up ? this.colors.upVolume : this.colors.downVolume };
  }

  paint(feed) {
    if (!this.chart) return;
    if (this.version !== feed.barsVersion) {
      this.version = feed.barsVersion;
      this.candles.setData(feed.bars.map((b) => this._candle(b)));
      this.volume.setData(feed.bars.map((b) => this._volume(b)));
      this.lastTime = feed.bars.length ? feed.bars[feed.bars.length - 1].time : 0;
      this.bars = feed.bars.length;
      this.last = feed.bars.length ? feed.bars[feed.bars.length - 1] : null;
    }
    this.empty.hidden = this.bars > 0 || feed.pendingBars.size > 0 || !feed.barsLoaded;
    for (const bar of feed.takeBars()) {
      if (bar.time < this.lastTime) continue; // older than what is drawn: the library refuses it
      if (bar.time > this.lastTime) this.bars++;
      this.candles.update(this._candle(bar));
      this.volume.update(this._volume(bar));
      this.lastTime = bar.time;
      this.last = bar;
    }
  }
}
