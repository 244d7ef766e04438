// Painting at most once per animation frame, and the costly parts less often than that.
//
// State changes call `invalidate(part)`; the next animation frame paints every dirty part once,
// however many messages arrived in between. A part may also have a minimum interval: the candle
// chart and the depth chart redraw whole canvases, which costs more than a frame can spare when a
// software-rendered page takes a thousand updates a second, and nobody reads them faster than a few
// times a second. Such a part stays dirty and is painted by the first frame after its interval.
// An interval may also be a function, read at every frame, so that a part can slow down when the
// message rate climbs (the ladder and the tape do: past a few hundred updates a second the text
// changes faster than anyone can read, and every repaint has a layout and raster cost).
// Per-part paint times are kept in `stats` (count, total and worst milliseconds).

export class Painter {
  constructor() {
    this.parts = new Map(); // name -> {paint, minIntervalMs, last}
    this.dirty = new Set();
    this.scheduled = false;
    this.timer = null;
    this.stats = { frames: 0, parts: {} };
    this._frame = this._frame.bind(this);
  }

  register(name, paint, minIntervalMs = 0) {
    this.parts.set(name, { paint, minIntervalMs, last: -Infinity });
    this.stats.parts[name] = { count: 0, totalMs: 0, maxMs: 0 };
  }

  invalidate(name) {
    this.dirty.add(name);
    this._schedule();
  }

  _schedule() {
    if (this.scheduled) return;
    this.scheduled = true;
    requestAnimationFrame(this._frame);
  }

  _frame(now) {
    this.scheduled = false;
    let wait = Infinity;
    for (const [name, part] of this.parts) {
      if (!this.dirty.has(name)) continue;
      const interval = typeof part.minIntervalMs === "function" ? part.minIntervalMs() : part.minIntervalMs;
      const due = part.last + interval;
      if (now < due) {
        wait = Math.min(wait, due - now);
        continue;
      }
      this.dirty.delete(name);
      part.last = now;
      const started = performance.now();
      part.paint();
      const ms = performance.now() - started;
      const s = this.stats.parts[name];
      s.count++;
      s.totalMs += ms;
      if (ms > s.maxMs) s.maxMs = ms;
    }
    this.stats.frames++;
    if (wait !== Infinity) {
      clearTimeout(this.timer);
      this.timer = setTimeout(() => this._schedule(), wait);
    }
  }
}
