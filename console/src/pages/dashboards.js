// The dashboards page: the list of dashboards stored on the server (/api/v3/dashboards), and one
// dashboard: panels of SQL queries drawn with chart.js / grid.js, a time-range picker whose range
// is substituted into the SQL by macros ($__timeFrom, $__timeTo, $__timeFilter(col), $__interval,
// $__interval_ms), auto-refresh (live mode), an editor, JSON export and import. The URL
// #/dashboards/ID?from=…&to=…&refresh=… reopens the same dashboard with the same range. Panel
// queries run with the viewer's own token.
import { apiJson, querySql } from "../api.js";
import { chartPlan, drawChart } from "../chart.js";
import { columnsOf, renderGrid } from "../grid.js";
import { download, h } from "../dom.js";

const BASE = "/api/v3/dashboards";
/** The quick ranges of the picker. */
export const RANGES = [
  ["now-5m", "Last 5 minutes"],
  ["now-15m", "Last 15 minutes"],
  ["now-1h", "Last 1 hour"],
  ["now-6h", "Last 6 hours"],
  ["now-24h", "Last 24 hours"],
  ["now-7d", "Last 7 days"],
];
/** The auto-refresh intervals offered (a dashboard or URL may name another, e.g. 1s). */
export const REFRESHES = ["off", "5s", "10s", "30s", "1m"];
const CHARTS = ["auto", "line", "bars", "table"];
const UNIT_S = { w: 604800, d: 86400, h: 3600, m: 60, s: 1 };
const NICE_S = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 604800];

/** Seconds of a duration like `5s`, `15m`, `1h30m`, `7d`; NaN when it is not one. */
export function durationSeconds(text) {
  const parts = String(text).match(/^(\d+[wdhms])+$/) ? String(text).match(/\d+[wdhms]/g) : null;
  if (!parts) return NaN;
  return parts.reduce((sum, p) => sum + Number(p.slice(0, -1)) * UNIT_S[p.slice(-1)], 0);
}

/** Milliseconds since the epoch of `now`, `now-<duration>` or an absolute instant; NaN if none. */
export function instantMs(text, nowMs) {
  if (text === "now") return nowMs;
  if (text.startsWith("now-")) return nowMs - durationSeconds(text.slice(4)) * 1000;
  return Date.parse(text);
}

/** The `$__interval` of a range: about 200 points across it, rounded to a nice step (≥ 1 s). */
export function intervalSeconds(fromMs, toMs) {
  const raw = Math.max(1, (toMs - fromMs) / 1000 / 200);
  return NICE_S.find((s) => s >= raw) || NICE_S[NICE_S.length - 1];
}

const literal = (ms) => `TIMESTAMP '${new Date(ms).toISOString()}'`;

/** A panel's SQL with the macros replaced for the range [fromMs, toMs]. */
export function expandMacros(sql, fromMs, toMs) {
  const step = intervalSeconds(fromMs, toMs);
  return sql
    .replace(/\$__timeFilter\(\s*([^)]+?)\s*\)/g, (_, col) => `(${col} >= ${literal(fromMs)} AND ${col} <= ${literal(toMs)})`)
    .replace(/\$__timeFrom\b/g, literal(fromMs))
    .replace(/\$__timeTo\b/g, literal(toMs))
    .replace(/\$__interval_ms\b/g, String(step * 1000))
    .replace(/\$__interval\b/g, `INTERVAL '${step} seconds'`);
}

/** A call of the dashboards API (errors: ApiError with `field`, the server's data.field). */
const api = apiJson;

function parseHash() {
  const m = location.hash.match(/^#\/dashboards(?:\/([^?]*))?(?:\?(.*))?$/) || [];
  return { id: m[1] ? decodeURIComponent(m[1]) : "", params: new URLSearchParams(m[2] || "") };
}

function showError(box, e) {
  box.textContent = e ? (e.field ? `${e.message} (field: ${e.field})` : e.message || String(e)) : "";
  box.hidden = !e;
}

function listView(el) {
  const list = h("ul", { id: "dashboard-list", class: "dash-list" });
  const newId = h("input", { id: "new-dashboard-id", placeholder: "id of a new dashboard (A-Z a-z 0-9 _ -)", size: 36 });
  const error = h("pre", { id: "dash-error", class: "error", hidden: true });
  const importText = h("textarea", { id: "import-json", rows: 6, cols: 80, placeholder: "Paste a dashboard's JSON (an export) here, or choose a file" });
  const importFile = h("input", { id: "import-file", type: "file", accept: ".json,application/json" });
  const create = () => {
    const id = newId.value.trim();
    if (!/^[A-Za-z0-9_-]{1,64}$/.test(id)) return showError(error, new Error("a dashboard id is 1 to 64 of A-Z a-z 0-9 _ -"));
    location.hash = `#/dashboards/${encodeURIComponent(id)}?edit=1`;
  };
  const doImport = async () => {
    showError(error, null);
    try {
      let d;
      try {
        d = JSON.parse(importText.value);
      } catch (e) {
        throw new Error(`not valid JSON: ${e.message}`);
      }
      if (!d || typeof d.id !== "string") throw new Error("the JSON has no `id` (the dashboard's id)");
      const saved = await api("PUT", `${BASE}/${encodeURIComponent(d.id)}`, d);
      location.hash = `#/dashboards/${encodeURIComponent(saved.id)}`;
    } catch (e) {
      showError(error, e);
    }
  };
  importFile.addEventListener("change", async () => {
    if (importFile.files[0]) importText.value = await importFile.files[0].text();
  });
  el.append(
    h("h2", {}, "Dashboards"),
    list,
    h("div", { class: "toolbar" }, newId, h("button", { id: "new-dashboard", class: "primary", onclick: create }, "New dashboard")),
    h("h3", {}, "Import"),
    importText,
    h("div", { class: "toolbar" }, importFile, h("button", { id: "import", onclick: doImport }, "Import")),
    error,
  );
  api("GET", BASE)
    .then((body) => {
      list.replaceChildren(
        ...body.dashboards.map((d) =>
          h("li", {}, h("a", { class: "dashboard-link", "data-id": d.id, href: `#/dashboards/${encodeURIComponent(d.id)}` }, d.title || d.id), " ", h("span", { class: "muted" }, `${d.id} · updated ${d.updated}`)),
        ),
      );
      if (!body.dashboards.length) list.append(h("li", { class: "muted" }, "No dashboards yet."));
      list.dataset.loaded = "1";
    })
    .catch((e) => showError(error, e));
  return () => {};
}

function panelEditor(p) {
  const row = h(
    "div",
    { class: "panel-editor card" },
    h("div", { class: "toolbar" },
      h("input", { class: "panel-title", placeholder: "panel title", value: p.title || "" }),
      h("input", { class: "panel-database", placeholder: "database", value: p.database || "" }),
      h("select", { class: "panel-chart" }, ...CHARTS.map((c) => h("option", { value: c, selected: (p.chart || "auto") === c }, `chart: ${c}`))),
      h("input", { class: "panel-split", placeholder: "split by (optional column)", value: p.split_by || "" }),
      h("button", { class: "panel-remove", onclick: () => row.remove() }, "Remove"),
    ),
    h("textarea", { class: "panel-sql", rows: 3, placeholder: "SELECT time, value FROM t WHERE $__timeFilter(time)" }),
  );
  row.querySelector(".panel-sql").value = p.sql || "";
  return row;
}

function dashboardView(el, id, params) {
  let dashboard = null; // as stored (null: a new draft)
  let range = { from: params.get("from") || "", to: params.get("to") || "" };
  let refresh = params.get("refresh") || "";
  let timer = null;
  let generation = 0;
  let panels = []; // { spec, box, chart, grid }

  const title = h("h2", { id: "dash-title" }, id);
  const rangeSelect = h("select", { id: "dash-range", title: "Time range" });
  const fromInput = h("input", { id: "dash-from", size: 24, title: "From: now, now-<duration> or an ISO instant" });
  const toInput = h("input", { id: "dash-to", size: 24, title: "To: now, now-<duration> or an ISO instant" });
  const refreshSelect = h("select", { id: "dash-refresh", title: "Auto-refresh (live mode)" });
  const status = h("span", { id: "dash-status", class: "muted" });
  const error = h("pre", { id: "dash-error", class: "error", hidden: true });
  const editor = h("section", { id: "dash-editor", class: "dash-editor", hidden: true });
  const grid = h("div", { id: "dash-panels", class: "dash-panels" });
  const editButton = h("button", { id: "dash-edit" }, "Edit");
  const exportButton = h("button", { id: "dash-export" }, "Export JSON ⤓");
  const deleteButton = h("button", { id: "dash-delete" }, "Delete");

  el.append(
    h("div", { class: "toolbar" }, h("a", { href: "#/dashboards", id: "dash-back" }, "← Dashboards"), title, h("span", { class: "spacer" }), editButton, exportButton, deleteButton),
    h("div", { class: "toolbar" },
      rangeSelect, fromInput, h("span", {}, "→"), toInput,
      h("button", { id: "dash-apply", onclick: () => setRange(fromInput.value.trim(), toInput.value.trim()) }, "Apply"),
      h("label", {}, "Refresh ", refreshSelect),
      h("button", { id: "dash-reload", title: "Run every panel now", onclick: () => runAll() }, "↻"),
      status,
    ),
    error,
    editor,
    grid,
  );

  function syncUrl() {
    const q = new URLSearchParams({ from: range.from, to: range.to, refresh });
    history.replaceState(null, "", `#/dashboards/${encodeURIComponent(id)}?${q}`);
  }

  function drawPicker() {
    const known = RANGES.some(([v]) => v === range.from) && range.to === "now";
    rangeSelect.replaceChildren(
      ...RANGES.map(([v, label]) => h("option", { value: v, selected: known && v === range.from }, label)),
      h("option", { value: "custom", selected: !known }, "Custom (from → to)"),
    );
    fromInput.value = range.from;
    toInput.value = range.to;
    const choices = REFRESHES.includes(refresh) ? REFRESHES : [...REFRESHES, refresh];
    refreshSelect.replaceChildren(...choices.map((r) => h("option", { value: r, selected: r === refresh }, r === "off" ? "off" : `every ${r}`)));
  }

  function setRange(from, to) {
    const now = Date.now();
    const f = instantMs(from, now);
    const t = instantMs(to, now);
    if (Number.isNaN(f) || Number.isNaN(t) || f >= t) {
      showError(error, new Error(`invalid time range ${from} → ${to}: use now, now-<duration> (now-15m) or ISO instants, from before to`));
      return;
    }
    showError(error, null);
    range = { from, to };
    drawPicker();
    syncUrl();
    runAll();
  }

  function setRefresh(r) {
    refresh = r;
    if (timer) clearInterval(timer);
    timer = null;
    const s = durationSeconds(r);
    if (r !== "off" && s >= 1) timer = setInterval(() => runAll(), s * 1000);
    grid.dataset.live = timer ? r : "off";
    syncUrl();
  }

  function clearPanels() {
    for (const p of panels) {
      if (p.chart) p.chart.destroy();
      if (p.grid) p.grid.destroy();
    }
    panels = [];
    grid.replaceChildren();
  }

  function buildPanels() {
    clearPanels();
    for (const [i, spec] of (dashboard ? dashboard.panels : []).entries()) {
      const box = h("div", { class: "dash-panel card", "data-index": i },
        h("h3", {}, spec.title || `Panel ${i + 1}`),
        h("div", { class: "panel-chart chart" }),
        h("div", { class: "panel-grid" }),
        h("pre", { class: "panel-error error", hidden: true }),
      );
      box.dataset.runs = "0";
      grid.append(box);
      panels.push({ spec, box, chart: null, grid: null });
    }
    if (!panels.length) grid.append(h("p", { class: "muted" }, "No panels: Edit → Add panel."));
  }

  function drawPanel(p, rows) {
    if (p.chart) p.chart.destroy();
    if (p.grid) p.grid.destroy();
    p.chart = p.grid = null;
    const chartBox = p.box.querySelector(".panel-chart");
    const gridBox = p.box.querySelector(".panel-grid");
    chartBox.replaceChildren();
    delete chartBox.dataset.drawn;
    // A result drawn as a table (or empty) leaves no band behind from the previous one.
    delete chartBox.dataset.band;
    delete chartBox.dataset.bandMeasure;
    delete chartBox.dataset.outside;
    const columns = columnsOf(rows);
    const plan = p.spec.chart === "table" ? null : chartPlan(columns, rows);
    if (plan) {
      if (p.spec.chart === "line") plan.mode = "lines";
      if (p.spec.chart === "bars") plan.mode = "bars";
      if (p.spec.split_by && columns.includes(p.spec.split_by)) plan.split = p.spec.split_by;
      p.chart = drawChart(chartBox, plan, rows, chartBox.clientWidth || p.box.clientWidth - 24);
      requestAnimationFrame(() => (chartBox.dataset.drawn = "1"));
    } else {
      p.grid = renderGrid(gridBox, columns, rows);
    }
  }

  async function runPanel(p, from, to, gen) {
    const errorBox = p.box.querySelector(".panel-error");
    try {
      const rows = await querySql(expandMacros(p.spec.sql, from, to), { db: p.spec.database });
      if (gen !== generation) return;
      errorBox.hidden = true;
      drawPanel(p, rows);
      p.box.dataset.rows = String(rows.length);
    } catch (e) {
      if (gen !== generation) return;
      errorBox.textContent = e.message;
      errorBox.hidden = false;
    } finally {
      if (gen === generation) p.box.dataset.runs = String(Number(p.box.dataset.runs) + 1);
    }
  }

  async function runAll() {
    if (!panels.length) return;
    const gen = ++generation;
    const now = Date.now();
    const from = instantMs(range.from, now);
    const to = instantMs(range.to, now);
    const started = performance.now();
    await Promise.all(panels.map((p) => runPanel(p, from, to, gen)));
    if (gen === generation) {
      status.textContent = `${new Date(from).toISOString()} → ${new Date(to).toISOString()} · ${Math.round(performance.now() - started)} ms`;
    }
  }

  function openEditor() {
    const d = dashboard || { title: id, panels: [] };
    const list = h("div", { id: "panel-editors" }, ...d.panels.map(panelEditor));
    editor.replaceChildren(
      h("div", { class: "toolbar" }, h("label", {}, "Title ", h("input", { id: "dash-title-input", value: d.title, size: 40 })),
        h("span", { class: "muted" }, "The current range and refresh are saved as the defaults. Macros: $__timeFrom $__timeTo $__timeFilter(col) $__interval $__interval_ms")),
      list,
      h("div", { class: "toolbar" },
        h("button", { id: "add-panel", onclick: () => list.append(panelEditor({ database: d.panels.length ? d.panels[d.panels.length - 1].database : "" })) }, "Add panel"),
        h("button", { id: "dash-save", class: "primary", onclick: save }, "Save"),
        h("button", { id: "dash-cancel", onclick: closeEditor, disabled: !dashboard }, "Cancel"),
      ),
    );
    editor.hidden = false;
  }

  function closeEditor() {
    editor.hidden = true;
    editor.replaceChildren();
    syncUrl();
  }

  async function save() {
    const body = {
      id,
      title: editor.querySelector("#dash-title-input").value,
      time: range,
      refresh,
      panels: [...editor.querySelectorAll(".panel-editor")].map((row) => {
        const split = row.querySelector(".panel-split").value.trim();
        return {
          title: row.querySelector(".panel-title").value,
          database: row.querySelector(".panel-database").value.trim(),
          sql: row.querySelector(".panel-sql").value,
          chart: row.querySelector(".panel-chart").value,
          ...(split ? { split_by: split } : {}),
        };
      }),
    };
    try {
      dashboard = await api("PUT", `${BASE}/${encodeURIComponent(id)}`, body);
      showError(error, null);
      show();
      closeEditor();
      el.dataset.saved = dashboard.updated;
    } catch (e) {
      showError(error, e);
    }
  }

  function show() {
    title.textContent = dashboard ? dashboard.title : `${id} (new, not saved)`;
    exportButton.disabled = deleteButton.disabled = !dashboard;
    buildPanels();
    runAll();
  }

  editButton.addEventListener("click", openEditor);
  rangeSelect.addEventListener("change", () => {
    if (rangeSelect.value !== "custom") setRange(rangeSelect.value, "now");
    else fromInput.focus();
  });
  refreshSelect.addEventListener("change", () => setRefresh(refreshSelect.value));
  exportButton.addEventListener("click", () => {
    if (dashboard) download(new Blob([`${JSON.stringify(dashboard, null, 2)}\n`], { type: "application/json" }), `dashboard-${id}.json`);
  });
  deleteButton.addEventListener("click", async () => {
    if (deleteButton.dataset.confirm !== "1") {
      deleteButton.dataset.confirm = "1";
      deleteButton.textContent = "Delete: click again";
      return;
    }
    try {
      await api("DELETE", `${BASE}/${encodeURIComponent(id)}`);
      location.hash = "#/dashboards";
    } catch (e) {
      showError(error, e);
    }
  });

  api("GET", `${BASE}/${encodeURIComponent(id)}`)
    .catch((e) => {
      if (e.status === 404) return null;
      throw e;
    })
    .then((d) => {
      dashboard = d;
      range = { from: range.from || (d ? d.time.from : "now-1h"), to: range.to || (d ? d.time.to : "now") };
      drawPicker();
      setRefresh(refresh || (d ? d.refresh : "off"));
      drawPicker();
      show();
      if (!d || params.get("edit") === "1") openEditor();
      el.dataset.loaded = "1";
    })
    .catch((e) => showError(error, e));

  return () => {
    generation++;
    if (timer) clearInterval(timer);
    clearPanels();
  };
}

export const dashboardsPage = {
  id: "dashboards",
  title: "Dashboards",
  mount(el) {
    const { id, params } = parseHash();
    return id ? dashboardView(el, id, params) : listView(el);
  },
};
