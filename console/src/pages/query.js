// The query page: the SQL editor, the run button (or Ctrl/Cmd-Enter: the statement under the
// cursor), the history of statements run (localStorage; statements only, never the token), and
// the result as a grid and a chart, with CSV and Parquet downloads of the same statement. The
// chart's controls: lines/bars/none, the split dimension, and the band (none, the pair the
// result's column names declare, or any two numeric columns as lower and upper: chart.js).
import { createEditor } from "../editor.js";
import { querySql } from "../api.js";
import { columnsOf, renderGrid } from "../grid.js";
import { chartPlan, drawChart, withBand } from "../chart.js";
import { addFunctions } from "../functions.js";
import { download, h } from "../dom.js";
import { loadSchema } from "../schema.js";

const HISTORY_KEY = "hourglass.history";
const HISTORY_MAX = 100;
const DOC_KEY = "hourglass.editor";
/** Numeric columns offered as a band's edges by hand (every ordered pair of them). */
const BAND_CHOICES_MAX = 10;

function history() {
  try {
    return JSON.parse(localStorage.getItem(HISTORY_KEY) || "[]");
  } catch {
    return [];
  }
}

function remember(statement) {
  const list = history().filter((s) => s !== statement);
  list.unshift(statement);
  localStorage.setItem(HISTORY_KEY, JSON.stringify(list.slice(0, HISTORY_MAX)));
}

export const queryPage = {
  id: "query",
  title: "Query",
  mount(el) {
    const db = h("select", { id: "db", title: "Default database of unqualified table names" }, h("option", { value: "" }, "(no default database)"));
    const runButton = h("button", { id: "run", class: "primary", title: "Ctrl/Cmd-Enter" }, "Run ▶");
    const historyList = h("ol", { id: "history", class: "history" });
    const status = h("span", { id: "result-status", class: "muted" });
    const chartMode = h(
      "select",
      { id: "chart-mode", title: "Chart" },
      ...["auto", "lines", "bars", "none"].map((m) => h("option", { value: m }, m === "auto" ? "chart: auto" : m)),
    );
    const splitBy = h("select", { id: "chart-split", title: "Split series by" });
    const bandBy = h("select", { id: "chart-band", title: "Band: two columns drawn as a filled band (lower, upper) around a measure" });
    const csv = h("button", { id: "download-csv", disabled: true }, "CSV ⤓");
    const parquet = h("button", { id: "download-parquet", disabled: true }, "Parquet ⤓");
    const error = h("pre", { id: "query-error", class: "error", hidden: true });
    const chartBox = h("div", { id: "chart", class: "chart" });
    const gridBox = h("div", { class: "grid-box" });
    const editorBox = h("div", { id: "editor", class: "editor" });

    el.append(
      h(
        "div",
        { class: "query-layout" },
        h(
          "section",
          { class: "query-main" },
          h("div", { class: "toolbar" }, runButton, h("label", {}, "Database ", db), h("span", { class: "muted" }, "Ctrl-Enter runs the statement under the cursor")),
          editorBox,
          error,
          h("div", { class: "toolbar" }, status, h("span", { class: "spacer" }), chartMode, splitBy, bandBy, csv, parquet),
          chartBox,
          gridBox,
        ),
        h("aside", { class: "query-side" }, h("h3", {}, "History"), historyList),
      ),
    );

    let last = null; // { statement, db, columns, rows, plan }
    let chart = null;
    let grid = null;
    let running = null;

    const editor = createEditor(editorBox, {
      doc: localStorage.getItem(DOC_KEY) || "SELECT * FROM information_schema.tables;\n",
      onRun: (stmt) => run(stmt),
    });

    function drawHistory() {
      historyList.replaceChildren(
        ...history().slice(0, 30).map((s) =>
          h("li", { title: s, onclick: () => editor.setText(s) }, s.length > 120 ? `${s.slice(0, 120)}…` : s),
        ),
      );
    }

    function renderChart() {
      if (chart) chart.destroy();
      chart = null;
      chartBox.replaceChildren();
      delete chartBox.dataset.drawn;
      delete chartBox.dataset.band;
      delete chartBox.dataset.bandMeasure;
      delete chartBox.dataset.outside;
      if (!last || !last.plan) return;
      const mode = chartMode.value;
      if (mode === "none") return;
      const pair = bandBy.value === "none" ? null : JSON.parse(bandBy.value);
      const band = pair ? { lower: pair[0], upper: pair[1] } : null;
      const plan = withBand({ ...last.plan, mode: mode === "auto" ? last.plan.mode : mode, split: splitBy.value || null }, band);
      chart = drawChart(chartBox, plan, last.rows, chartBox.clientWidth || el.clientWidth - 40);
      requestAnimationFrame(() => {
        chartBox.dataset.drawn = "1";
        if (last && last.started) chartBox.dataset.ms = String(Math.round(performance.now() - last.started));
      });
    }

    async function run(stmt) {
      const statement = stmt.text;
      if (!statement) return;
      if (running) running.abort();
      running = new AbortController();
      editor.clearErrors();
      error.hidden = true;
      status.textContent = "running…";
      runButton.disabled = true;
      const started = performance.now();
      localStorage.setItem(DOC_KEY, editor.text());
      remember(statement);
      drawHistory();
      try {
        const rows = await querySql(statement, { db: db.value, signal: running.signal });
        const fetched = performance.now();
        const columns = columnsOf(rows);
        const plan = chartPlan(columns, rows);
        last = { statement, db: db.value, columns, rows, plan, started };
        splitBy.replaceChildren(
          h("option", { value: "" }, "no split"),
          ...(plan ? plan.dimensions : []).map((d) => h("option", { value: d, selected: plan.split === d }, `split by ${d}`)),
        );
        bandBy.replaceChildren(...bandOptions(plan));
        if (grid) grid.destroy();
        grid = renderGrid(gridBox, columns, rows);
        renderChart();
        status.textContent = `${rows.length.toLocaleString()} rows in ${Math.round(fetched - started)} ms`;
        csv.disabled = parquet.disabled = false;
      } catch (e) {
        if (e.name === "AbortError") return;
        // The previous result goes: what is shown is always the result of the last run.
        last = null;
        if (grid) grid.destroy();
        grid = null;
        renderChart();
        csv.disabled = parquet.disabled = true;
        status.textContent = "";
        error.textContent = e.message;
        error.hidden = false;
        editor.markError(stmt, e.message);
      } finally {
        runButton.disabled = false;
      }
    }

    /** The band choices of a plan: none, the detected pair (selected), every other ordered pair. */
    function bandOptions(plan) {
      const option = (lower, upper, note) =>
        h("option", { value: JSON.stringify([lower, upper]), selected: Boolean(note) }, `band: ${lower} – ${upper}${note || ""}`);
      const detected = plan && plan.band;
      const numeric = plan ? plan.numeric.slice(0, BAND_CHOICES_MAX) : [];
      const pairs = numeric.flatMap((lower) => numeric.filter((upper) => upper !== lower).map((upper) => [lower, upper]));
      return [
        h("option", { value: "none", selected: !detected }, "no band"),
        ...(detected ? [option(detected.lower, detected.upper, " (auto)")] : []),
        ...pairs
          .filter(([lower, upper]) => !detected || lower !== detected.lower || upper !== detected.upper)
          .map(([lower, upper]) => option(lower, upper, "")),
      ];
    }

    async function save(format) {
      if (!last) return;
      const button = format === "csv" ? csv : parquet;
      button.disabled = true;
      try {
        const blob = await querySql(last.statement, { db: last.db, format });
        download(blob, `hourglass-result.${format}`);
      } catch (e) {
        error.textContent = e.message;
        error.hidden = false;
      } finally {
        button.disabled = false;
      }
    }

    runButton.addEventListener("click", () => editor.runCurrent());
    chartMode.addEventListener("change", renderChart);
    splitBy.addEventListener("change", renderChart);
    bandBy.addEventListener("change", renderChart);
    csv.addEventListener("click", () => save("csv"));
    parquet.addEventListener("click", () => save("parquet"));
    drawHistory();

    // Completion: the databases, tables and columns the caller may read, and the functions.
    loadSchema()
      .then((schema) => {
        for (const name of Object.keys(schema.databases).sort()) db.append(h("option", { value: name }, name));
        editor.setSchema(schema.namespace);
      })
      .catch(() => {});
    querySql("SELECT DISTINCT routine_name FROM information_schema.routines")
      .then((rows) => addFunctions(rows.map((r) => r.routine_name)))
      .catch(() => {});

    editor.view.focus();
    return () => {
      if (running) running.abort();
      if (chart) chart.destroy();
    };
  },
};
