// Exact decimal text, the way the API sends money.
//
// Prices, quantities and balances arrive as decimal strings ("100.5", "0.00012"). The page keeps
// them as strings and does arithmetic only through BigInt units here, so that what a trader sees,
// sums and sends never passes through a binary float. Two places knowingly use floats, for drawing
// only: the widths of the cumulative depth bars and the depth chart's curve, and the chart library,
// which plots numbers. Sorting the book by Number(price) is exact for prices of up to 15 significant
// digits, which covers every tick size and price range an exchange config can express in practice.

const ZERO_TEXT = /^-?0*(\.0*)?$/;

/** Whether a decimal string is zero ("0", "0.000", "-0.0"). */
export function isZero(text) {
  return ZERO_TEXT.test(text);
}

/** Canonical form: no exponent, no trailing zeros after the point, no trailing point, no leading zeros. */
export function canonical(text) {
  let sign = "";
  if (text[0] === "-") {
    sign = "-";
    text = text.slice(1);
  }
  let point = text.indexOf(".");
  let whole = point < 0 ? text : text.slice(0, point);
  let frac = point < 0 ? "" : text.slice(point + 1);
  frac = frac.replace(/0+$/, "");
  whole = whole.replace(/^0+(?=\d)/, "");
  if (whole === "") whole = "0";
  if (whole === "0" && frac === "") return "0";
  return sign + whole + (frac ? "." + frac : "");
}

/** Decimal places the value needs (trailing zeros do not count). */
export function decimalsOf(text) {
  const point = text.indexOf(".");
  return point < 0 ? 0 : text.slice(point + 1).replace(/0+$/, "").length;
}

/** Integer units at `scale` places; digits finer than the scale are cut off (towards zero). */
export function toUnits(text, scale) {
  let negative = false;
  if (text[0] === "-") {
    negative = true;
    text = text.slice(1);
  }
  const point = text.indexOf(".");
  const whole = point < 0 ? text : text.slice(0, point);
  let frac = point < 0 ? "" : text.slice(point + 1);
  frac = frac.length > scale ? frac.slice(0, scale) : frac.padEnd(scale, "0");
  const units = BigInt((whole || "0") + frac);
  return negative ? -units : units;
}

/** Canonical decimal text of integer units at `scale` places. */
export function fromUnits(units, scale) {
  let sign = "";
  if (units < 0n) {
    sign = "-";
    units = -units;
  }
  if (scale === 0) return sign + units.toString();
  const digits = units.toString().padStart(scale + 1, "0");
  const whole = digits.slice(0, digits.length - scale);
  const frac = digits.slice(digits.length - scale).replace(/0+$/, "");
  if (whole === "0" && frac === "") return "0";
  return sign + whole + (frac ? "." + frac : "");
}

/** Exact a + b. */
export function add(a, b) {
  const scale = Math.max(decimalsOf(a), decimalsOf(b));
  return fromUnits(toUnits(a, scale) + toUnits(b, scale), scale);
}

/** Exact a - b. */
export function sub(a, b) {
  const scale = Math.max(decimalsOf(a), decimalsOf(b));
  return fromUnits(toUnits(a, scale) - toUnits(b, scale), scale);
}

/** Exact a * b. */
export function mul(a, b) {
  const sa = decimalsOf(a);
  const sb = decimalsOf(b);
  return fromUnits(toUnits(a, sa) * toUnits(b, sb), sa + sb);
}

/** -1, 0 or 1 as a is below, equal to or above b. */
export function compare(a, b) {
  const scale = Math.max(decimalsOf(a), decimalsOf(b));
  const x = toUnits(a, scale);
  const y = toUnits(b, scale);
  return x < y ? -1 : x > y ? 1 : 0;
}

/** The largest multiple of `step` not above `value` (both positive decimal strings). */
export function floorToStep(value, step) {
  const scale = Math.max(decimalsOf(value), decimalsOf(step));
  const v = toUnits(value, scale);
  const s = toUnits(step, scale);
  if (s <= 0n) return canonical(value);
  const floored = v >= 0n ? (v / s) * s : -((-v + s - 1n) / s) * s;
  return fromUnits(floored, scale);
}

/** The smallest multiple of `step` not below `value`. */
export function ceilToStep(value, step) {
  const scale = Math.max(decimalsOf(value), decimalsOf(step));
  const v = toUnits(value, scale);
  const s = toUnits(step, scale);
  if (s <= 0n) return canonical(value);
  const ceiled = v >= 0n ? ((v + s - 1n) / s) * s : -((-v / s) * s);
  return fromUnits(ceiled, scale);
}

/**
 * How much base asset `percent` % of a quote balance buys at `price`, floored to the lot `step`:
 * floor(quote * percent / 100 / price / step) * step, computed exactly.
 */
export function qtyForQuote(quote, percent, price, step) {
  if (isZero(price) || isZero(step)) return "0";
  const scale = Math.max(decimalsOf(quote), decimalsOf(price), decimalsOf(step));
  const q = toUnits(quote, scale);
  const p = toUnits(price, scale);
  const s = toUnits(step, scale);
  const pow = 10n ** BigInt(scale);
  // qty = q/pow * pct/100 / (p/pow); steps = qty / (s/pow) = q * pct * pow / (100 * p * s)
  const steps = (q * BigInt(percent) * pow) / (100n * p * s);
  return fromUnits(steps * s, scale);
}

/** `percent` % of an amount, floored to `step`. */
export function fractionToStep(amount, percent, step) {
  if (isZero(step)) return "0";
  const scale = Math.max(decimalsOf(amount), decimalsOf(step));
  const a = toUnits(amount, scale);
  const s = toUnits(step, scale);
  const steps = (a * BigInt(percent)) / (100n * s);
  return fromUnits(steps * s, scale);
}

/** Text with exactly `places` decimals (padded with zeros or cut), for aligned columns. */
export function fixed(text, places) {
  const point = text.indexOf(".");
  const whole = point < 0 ? text : text.slice(0, point);
  const frac = point < 0 ? "" : text.slice(point + 1);
  if (places <= 0) return whole;
  return whole + "." + (frac.length >= places ? frac.slice(0, places) : frac.padEnd(places, "0"));
}

/** Thousands separators on the whole part of a decimal string (display only). */
export function grouped(text) {
  const point = text.indexOf(".");
  const whole = point < 0 ? text : text.slice(0, point);
  const rest = point < 0 ? "" : text.slice(point);
  const sign = whole[0] === "-" ? "-" : "";
  const digits = sign ? whole.slice(1) : whole;
  return sign + digits.replace(/\B(?=(\d{3})+(?!\d))/g, ",") + rest;
}

/** A compact display of a large amount: 1234567.89 -> "1.23M" (display only, through a float). */
export function compact(text) {
  const n = Number(text);
  const abs = Math.abs(n);
  if (abs >= 1e9) return (n / 1e9).toFixed(2) + "B";
  if (abs >= 1e6) return (n / 1e6).toFixed(2) + "M";
  if (abs >= 1e4) return (n / 1e3).toFixed(2) + "K";
  return text;
}
