// Number, size, rate and duration formatting for the bars. Pure functions.

const SI_PREFIXES = ["", "k", "M", "G", "T", "P", "E"];
const BINARY_PREFIXES = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
const BYTE_UNITS = new Set(["b", "byte", "bytes", "o", "octets"]);

/** True when `unit` counts bytes, so sizes read as KiB/MiB/GiB. */
export function isByteUnit(unit) {
  return typeof unit === "string" && BYTE_UNITS.has(unit.trim().toLowerCase());
}

function trimNumber(value, digits) {
  const text = value.toFixed(digits);
  return text.includes(".") ? text.replace(/\.?0+$/, "") : text;
}

/** A plain count with k/M/G scaling: 999, 1.2k, 3.45M. */
export function scaleCount(value) {
  if (!Number.isFinite(value)) return "?";
  let scaled = Math.abs(value);
  let index = 0;
  while (scaled >= 999.5 && index < SI_PREFIXES.length - 1) {
    scaled /= 1000;
    index += 1;
  }
  const sign = value < 0 ? "-" : "";
  // Three significant digits at most: 1.23k, 12.3M, 123 (what tqdm shows).
  const digits = Number.isInteger(scaled) && index === 0 ? 0 : scaled < 10 ? 2 : scaled < 100 ? 1 : 0;
  return sign + trimNumber(scaled, digits) + SI_PREFIXES[index];
}

/** A byte count with binary prefixes: 512 B, 1.5 KiB, 20 MiB. */
export function scaleBytes(value) {
  if (!Number.isFinite(value)) return "?";
  let scaled = Math.abs(value);
  let index = 0;
  while (scaled >= 1023.5 && index < BINARY_PREFIXES.length - 1) {
    scaled /= 1024;
    index += 1;
  }
  const digits = index === 0 ? 0 : scaled < 10 ? 2 : scaled < 100 ? 1 : 0;
  return (value < 0 ? "-" : "") + trimNumber(scaled, digits) + " " + BINARY_PREFIXES[index];
}

/** `value` with its unit: "1.2k files", "3.5 MiB", "42". */
export function formatAmount(value, unit) {
  if (isByteUnit(unit)) return scaleBytes(value);
  const count = scaleCount(value);
  return unit ? count + " " + unit : count;
}

/** "n / total unit", or "n unit" when the total is unknown. */
export function formatProgress(n, total, unit) {
  if (total === null || total === undefined) return formatAmount(n, unit);
  if (isByteUnit(unit)) return scaleBytes(n) + " / " + scaleBytes(total);
  const suffix = unit ? " " + unit : "";
  return scaleCount(n) + " / " + scaleCount(total) + suffix;
}

/** Units per second: "12.5 files/s", "3.2 MiB/s"; empty when unknown. */
export function formatRate(rate, unit) {
  if (rate === null || rate === undefined || !Number.isFinite(rate)) return "";
  if (isByteUnit(unit)) return scaleBytes(rate) + "/s";
  return scaleCount(rate) + " " + (unit || "it") + "/s";
}

/** A fraction 0..1 as a percentage: "42%", "99.5%". */
export function formatPercent(fraction) {
  const percent = Math.max(0, Math.min(1, fraction)) * 100;
  if (percent > 0 && percent < 10) return trimNumber(percent, 1) + "%";
  if (percent > 99 && percent < 100) return trimNumber(Math.floor(percent * 10) / 10, 1) + "%";
  return Math.floor(percent) + "%";
}

/** Seconds as a short duration: "45s", "3m 05s", "2h 10m", "3d 4h". */
export function formatDuration(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return "";
  const total = Math.max(0, Math.round(seconds));
  const days = Math.floor(total / 86400);
  const hours = Math.floor((total % 86400) / 3600);
  const minutes = Math.floor((total % 3600) / 60);
  const secs = total % 60;
  if (days > 0) return days + "d " + hours + "h";
  if (hours > 0) return hours + "h " + String(minutes).padStart(2, "0") + "m";
  if (minutes > 0) return minutes + "m " + String(secs).padStart(2, "0") + "s";
  return secs + "s";
}

/** "updated 5s ago"-style age of a past moment. */
export function formatAge(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return "";
  return seconds < 1 ? "just now" : formatDuration(seconds) + " ago";
}

/** A metric's value: "0.2346", "12.5", "3.2M", "-0.001"; integers as counts. */
export function formatMetric(value) {
  if (typeof value !== "number" || !Number.isFinite(value)) return "";
  const size = Math.abs(value);
  if (size >= 10000) return scaleCount(value);
  if (Number.isInteger(value)) return String(value);
  // Four significant digits say what a loss or an accuracy does; more is noise on a card.
  const text = size >= 0.001 ? value.toPrecision(4) : value.toExponential(2);
  return text.includes("e") ? text : text.replace(/\.?0+$/, "");
}
