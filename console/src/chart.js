// Charts of a result (uPlot): a time column on x, numeric columns as series, optionally split
// by a dimension (a string column with few values: one series per value), optionally with a band
// (two numeric columns drawn as a translucent fill around a measure, its points outside the band
// marked in red: the anomaly bands of docs/anomaly.md). chartPlan() picks these automatically;
// the query page lets the user change them by hand. The chart's container gets
// `data-band="lower,upper"` and `data-outside="N"` (points outside the band) when a band is drawn.
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";

const TIMESTAMP = /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}/;
const MAX_SPLIT = 24;
const PALETTE = ["#2f6fdf", "#e0622b", "#2a9d55", "#9b51e0", "#d8a31a", "#16a3b8", "#d2386c", "#6b7a8f"];
/** The band's fill: its measure's colour at this alpha (hex, of 8-digit #rrggbbaa). */
export const BAND_ALPHA = "30";
/** The band's edges: its measure's colour at this alpha. */
const EDGE_ALPHA = "80";
/** The marks of a band's measure outside the band. */
export const OUTSIDE_COLOUR = "#e5171f";
/** Suffixes of a band's lower and upper column, after `<prefix>_` or alone (case-insensitive). */
const BAND_SUFFIXES = [["lower", "upper"], ["lo", "hi"]];

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
 * The band around `measure` of the columns `lower` and `upper` (numeric, both in `numeric`), or
 * null when they are not two numeric columns: `measure` is `<measure>` of `<measure>_lower` (or
 * `_lo`) when that is a numeric column, else the first numeric column that is not one of the
 * two (null when there is none).
 */
export function bandOf(numeric, lower, upper) {
  if (!numeric.includes(lower) || !numeric.includes(upper) || lower === upper) return null;
  const suffix = BAND_SUFFIXES.map(([lo]) => `_${lo}`).find((x) => lower.toLowerCase().endsWith(x));
  const prefix = suffix ? lower.slice(0, -suffix.length).toLowerCase() : null;
  const others = numeric.filter((c) => c !== lower && c !== upper);
  const measure = others.find((c) => c.toLowerCase() === prefix) || others[0] || null;
  return { lower, upper, measure };
}

/**
 * The band a result declares by its column names (case-insensitive), or null: a pair of numeric
 * columns `<prefix>_lower`/`<prefix>_upper` or `<prefix>_lo`/`<prefix>_hi` (same prefix), or
 * `lower`/`upper` or `lo`/`hi` alone. A pair whose prefix names a numeric column is a band around
 * that column and comes first; otherwise the first pair in column order wins, around the first
 * other numeric column. One band a chart.
 */
export function detectBand(numeric) {
  const byName = new Map(numeric.map((c) => [c.toLowerCase(), c]));
  const pairs = [];
  for (const c of numeric) {
    const name = c.toLowerCase();
    for (const [lo, hi] of BAND_SUFFIXES) {
      let prefix = null;
      if (name === lo) prefix = "";
      else if (name.endsWith(`_${lo}`) && name.length > lo.length + 1) prefix = name.slice(0, -lo.length - 1);
      if (prefix === null) continue;
      const upper = byName.get(prefix ? `${prefix}_${hi}` : hi);
      if (upper) pairs.push({ lower: c, upper, prefixed: prefix !== "" && byName.has(prefix) });
    }
  }
  const pick = pairs.find((p) => p.prefixed) || pairs[0];
  return pick ? bandOf(numeric, pick.lower, pick.upper) : null;
}

/**
 * The plan with `band` ({ lower, upper } or null for none): the band's two columns leave the
 * measures (they are drawn as the band's edges); null for none draws every numeric column.
 */
export function withBand(plan, band) {
  const chosen = band ? bandOf(plan.numeric, band.lower, band.upper) : null;
  const measures = chosen ? plan.numeric.filter((c) => c !== chosen.lower && c !== chosen.upper) : plan.numeric;
  return { ...plan, band: chosen, measures };
}

/**
 * What to draw by default: { time, x, measures, numeric, band, split, dimensions, mode } or null
 * when the result has no time column and no numeric column. `mode` is "lines" with a time
 * column, "bars" otherwise; `numeric` is every numeric column, `measures` those drawn as series
 * (all but the band's two), `band` the detected band ({ lower, upper, measure }) or null.
 */
export function chartPlan(columns, rows) {
  if (!rows.length) return null;
  const s = sample(rows);
  const isTime = (c) => s.some((r) => r[c] !== undefined && r[c] !== null) &&
    s.every((r) => r[c] === undefined || r[c] === null || (typeof r[c] === "string" && TIMESTAMP.test(r[c])));
  const time = columns.find((c) => c === "time" && isTime(c)) || columns.find(isTime) || null;
  const numeric = columns.filter(
    (c) => c !== time && s.some((r) => typeof r[c] === "number") && s.every((r) => r[c] == null || typeof r[c] === "number"),
  );
  if (!numeric.length) return null;
  const dimensions = columns.filter((c) => c !== time && !numeric.includes(c) && s.every((r) => r[c] == null || typeof r[c] === "string"));
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
  const plan = { time, x: time || columns.find((c) => !numeric.includes(c)) || null, numeric, split, dimensions, mode: time ? "lines" : "bars" };
  return withBand(plan, detectBand(numeric));
}

/**
 * uPlot's aligned data ([xs, ...series]), the series' labels, and what each series is
 * (`cols[i]`: { column, group }, group the split value or null). The series are the measures
 * then the band's lower and upper columns, for each split value in turn.
 */
export function chartData(plan, rows) {
  const columns = plan.band ? [...plan.measures, plan.band.lower, plan.band.upper] : plan.measures;
  const xOf = plan.time ? (r) => timeValue(r[plan.time]) : (_r, i) => i;
  if (!plan.split) {
    const idx = [];
    for (let i = 0; i < rows.length; i++) if (!Number.isNaN(xOf(rows[i], i))) idx.push(i);
    const xs = Float64Array.from(idx, (i) => xOf(rows[i], i));
    let sorted = true;
    for (let i = 1; i < xs.length; i++) if (xs[i] < xs[i - 1]) { sorted = false; break; }
    if (!sorted) idx.sort((a, b) => xOf(rows[a], a) - xOf(rows[b], b));
    const x = sorted ? xs : Float64Array.from(idx, (i) => xOf(rows[i], i));
    const series = columns.map((m) => idx.map((i) => (typeof rows[i][m] === "number" ? rows[i][m] : null)));
    return { data: [x, ...series], labels: columns, cols: columns.map((column) => ({ column, group: null })) };
  }
  // Split: one series per (dimension value, column) over the union of the times.
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
      g = columns.map(() => new Array(xs.length).fill(null));
      groups.set(key, g);
    }
    columns.forEach((m, j) => {
      if (typeof r[m] === "number") g[j][at.get(t)] = r[m];
    });
  }
  const data = [xs];
  const labels = [];
  const cols = [];
  for (const [key, g] of [...groups.entries()].sort()) {
    columns.forEach((m, j) => {
      data.push(g[j]);
      labels.push(plan.measures.length > 1 || j >= plan.measures.length ? `${key} ${m}` : key);
      cols.push({ column: m, group: key });
    });
  }
  return { data, labels, cols };
}

/**
 * The points of `values` outside [lower, upper] (strictly below or above; rows where any of the
 * three is null are not), as a series: the value there, null elsewhere; and how many.
 */
export function outsideBand(values, lower, upper) {
  let count = 0;
  const out = values.map((v, i) => {
    const lo = lower[i];
    const hi = upper[i];
    if (v == null || lo == null || hi == null || !(v < lo || v > hi)) return null;
    count++;
    return v;
  });
  return { values: out, count };
}

/**
 * Draws a plan into `parent`; returns the uPlot instance (destroy() it to remove). With a band,
 * sets `data-band="lower,upper"`, `data-band-measure` and `data-outside` (points outside it, all
 * split values) on `parent`, and removes them without.
 */
export function drawChart(parent, plan, rows, width) {
  const { data, labels, cols } = chartData(plan, rows);
  const bars = plan.mode === "bars";
  const series = [{ label: plan.time || plan.x || "row" }];
  const aligned = [data[0]];
  const bands = [];
  const colourOf = new Map(); // "group\u0000column" of a measure → its colour
  let measureCount = 0;
  let outsideCount = 0;
  const key = (group, column) => `${group}\u0000${column}`;
  cols.forEach(({ column, group }, i) => {
    if (plan.band && (column === plan.band.lower || column === plan.band.upper)) return;
    const colour = PALETTE[measureCount++ % PALETTE.length];
    colourOf.set(key(group, column), { colour, index: i });
    aligned.push(data[i + 1]);
    series.push({
      label: labels[i],
      stroke: colour,
      fill: bars ? `${colour}99` : undefined,
      width: 1.5,
      spanGaps: Boolean(plan.split),
      points: { show: false },
      paths: bars ? uPlot.paths.bars({ size: [0.8, 64], gap: 1 }) : undefined,
    });
  });
  if (plan.band) {
    // Per split value: the lower and upper edges, the fill between them, the points outside.
    const groups = [...new Set(cols.map((c) => c.group))];
    for (const group of groups) {
      const lowerAt = cols.findIndex((c) => c.group === group && c.column === plan.band.lower);
      const upperAt = cols.findIndex((c) => c.group === group && c.column === plan.band.upper);
      const measure = plan.band.measure ? colourOf.get(key(group, plan.band.measure)) : null;
      const colour = measure ? measure.colour : PALETTE[0];
      const edge = (at) => {
        aligned.push(data[at + 1]);
        series.push({ label: labels[at], stroke: `${colour}${EDGE_ALPHA}`, width: 1, points: { show: false }, spanGaps: Boolean(plan.split) });
        return series.length - 1;
      };
      const lowerIdx = edge(lowerAt);
      const upperIdx = edge(upperAt);
      bands.push({ series: [upperIdx, lowerIdx], fill: `${colour}${BAND_ALPHA}` });
      if (!measure) continue;
      const outside = outsideBand(data[measure.index + 1], data[lowerAt + 1], data[upperAt + 1]);
      outsideCount += outside.count;
      aligned.push(outside.values);
      series.push({
        label: group === null ? "outside band" : `${group} outside band`,
        stroke: OUTSIDE_COLOUR,
        width: 0,
        paths: () => null,
        points: { show: true, space: 0, size: 7, width: 1, stroke: OUTSIDE_COLOUR, fill: OUTSIDE_COLOUR },
      });
    }
    parent.dataset.band = `${plan.band.lower},${plan.band.upper}`;
    parent.dataset.bandMeasure = plan.band.measure || "";
    parent.dataset.outside = String(outsideCount);
  } else {
    delete parent.dataset.band;
    delete parent.dataset.bandMeasure;
    delete parent.dataset.outside;
  }
  const opts = {
    width: Math.max(width, 320),
    height: 320,
    scales: { x: { time: Boolean(plan.time) } },
    legend: { show: series.length <= 13 },
    cursor: { drag: { x: true, y: false } },
    series,
    bands,
  };
  return new uPlot(opts, aligned, parent);
}
