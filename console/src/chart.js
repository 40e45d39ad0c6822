// Charts of a result (uPlot): a time column on x, numeric columns as series, optionally split
// by a dimension (a string column with few values: one series per value). chartPlan() picks
// these automatically; the query page lets the user change them by hand.
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";

const TIMESTAMP = /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}/;
const MAX_SPLIT = 24;
const PALETTE = ["#2f6fdf", "#e0622b", "#2a9d55", "#9b51e0", "#d8a31a", "#16a3b8", "#d2386c", "#6b7a8f"];

/** Seconds since the epoch of a result's time value (ISO text without a zone is UTC), or NaN. */
export function timeValue(v) {
  if (typeof v === "number") return v > 1e14 ? v / 1e9 : v > 1e11 ? v / 1e3 : v;
  if (typeof v !== "string" || !TIMESTAMP.test(v)) return NaN;
  const zoned = /([zZ]|[+-]\d{2}:?\d{2})$/.test(v) ? v : `${v}Z`;
  return Date.parse(zoned.replace(" ", "T")) / 1000;
}

function sample(rows) {
  const n = Math.min(rows.length, 500);
  const step = Math.max(1, Math.floor(rows.length / n));
  const out = [];
  for (let i = 0; i < rows.length && out.length < n; i += step) out.push(rows[i]);
  return out;
}

/**
 * What to draw by default: { time, measures, split, mode } or null when the result has no time
 * column and no numeric column. `mode` is "lines" with a time column, "bars" otherwise.
 */
export function chartPlan(columns, rows) {
  if (!rows.length) return null;
  const s = sample(rows);
  const isTime = (c) => s.some((r) => r[c] !== undefined && r[c] !== null) &&
    s.every((r) => r[c] === undefined || r[c] === null || (typeof r[c] === "string" && TIMESTAMP.test(r[c])));
  const time = columns.find((c) => c === "time" && isTime(c)) || columns.find(isTime) || null;
  const measures = columns.filter(
    (c) => c !== time && s.some((r) => typeof r[c] === "number") && s.every((r) => r[c] == null || typeof r[c] === "number"),
  );
  if (!measures.length) return null;
  const dimensions = columns.filter((c) => c !== time && !measures.includes(c) && s.every((r) => r[c] == null || typeof r[c] === "string"));
  let split = null;
  if (time) {
    for (const d of dimensions) {
      const distinct = new Set(s.map((r) => r[d]));
      if (distinct.size > 1 && distinct.size <= MAX_SPLIT) {
        split = d;
        break;
      }
    }
  }
  return { time, x: time || columns.find((c) => !measures.includes(c)) || null, measures, split, dimensions, mode: time ? "lines" : "bars" };
}

/** uPlot's aligned data ([xs, ...series]) and series labels of a plan. */
export function chartData(plan, rows) {
  const xOf = plan.time ? (r) => timeValue(r[plan.time]) : (_r, i) => i;
  if (!plan.split) {
    const idx = [];
    for (let i = 0; i < rows.length; i++) if (!Number.isNaN(xOf(rows[i], i))) idx.push(i);
    const xs = Float64Array.from(idx, (i) => xOf(rows[i], i));
    let sorted = true;
    for (let i = 1; i < xs.length; i++) if (xs[i] < xs[i - 1]) { sorted = false; break; }
    if (!sorted) idx.sort((a, b) => xOf(rows[a], a) - xOf(rows[b], b));
    const x = sorted ? xs : Float64Array.from(idx, (i) => xOf(rows[i], i));
    const series = plan.measures.map((m) => idx.map((i) => (typeof rows[i][m] === "number" ? rows[i][m] : null)));
    return { data: [x, ...series], labels: plan.measures };
  }
  // Split: one series per (dimension value, measure) over the union of the times.
  const xSet = new Set();
  for (let i = 0; i < rows.length; i++) {
    const t = xOf(rows[i], i);
    if (!Number.isNaN(t)) xSet.add(t);
  }
  const xs = Float64Array.from(xSet).sort();
  const at = new Map();
  xs.forEach((t, i) => at.set(t, i));
  const groups = new Map();
  for (let i = 0; i < rows.length; i++) {
    const r = rows[i];
    const t = xOf(r, i);
    if (Number.isNaN(t)) continue;
    const key = String(r[plan.split] ?? "(null)");
    let g = groups.get(key);
    if (!g) {
      if (groups.size >= MAX_SPLIT) continue;
      g = plan.measures.map(() => new Array(xs.length).fill(null));
      groups.set(key, g);
    }
    plan.measures.forEach((m, j) => {
      if (typeof r[m] === "number") g[j][at.get(t)] = r[m];
    });
  }
  const data = [xs];
  const labels = [];
  for (const [key, g] of [...groups.entries()].sort()) {
    plan.measures.forEach((m, j) => {
      data.push(g[j]);
      labels.push(plan.measures.length > 1 ? `${key} ${m}` : key);
    });
  }
  return { data, labels };
}

/** Draws a plan into `parent`; returns the uPlot instance (destroy() it to remove). */
export function drawChart(parent, plan, rows, width) {
  const { data, labels } = chartData(plan, rows);
  const bars = plan.mode === "bars";
  const opts = {
    width: Math.max(width, 320),
    height: 320,
    scales: { x: { time: Boolean(plan.time) } },
    legend: { show: labels.length <= 12 },
    cursor: { drag: { x: true, y: false } },
    series: [
      { label: plan.time || plan.x || "row" },
      ...labels.map((label, i) => ({
        label,
        stroke: PALETTE[i % PALETTE.length],
        fill: bars ? `${PALETTE[i % PALETTE.length]}99` : undefined,
        width: 1.5,
        spanGaps: Boolean(plan.split),
        points: { show: false },
        paths: bars ? uPlot.paths.bars({ size: [0.8, 64], gap: 1 }) : undefined,
      })),
    ],
  };
  return new uPlot(opts, data, parent);
}
