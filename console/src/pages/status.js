// The status page: the server's /metrics, grouped (ingest, memory store, WAL, magnetic store,
// scheduled queries, MQTT, queries, connections: each metric in the first group it matches),
// counters shown with their rate since the last refresh (every 5 s), and every metric below.
// Above them, the headline rates: rows ingested, queries and query errors per second
// (hourglass_ingest_rows_total, hourglass_queries_total, hourglass_query_errors_total).
import { metricsText } from "../api.js";
import { bytes, h } from "../dom.js";

const REFRESH_MS = 5000;

/** The headline rates: [element id, label, counter]. */
const RATES = [
  ["ingest-rate", "Ingest", "hourglass_ingest_rows_total", "rows/s"],
  ["query-rate", "Queries", "hourglass_queries_total", "queries/s"],
  ["query-error-rate", "Query errors", "hourglass_query_errors_total", "errors/s"],
];

const GROUPS = [
  ["Ingest", /ingest|write|rows_written|lines|points/],
  ["Memory store", /memory_store/],
  ["WAL", /wal/],
  ["Magnetic store", /magnetic|persist|compact/],
  ["Scheduled queries", /schedul/],
  ["MQTT", /mqtt/],
  ["Queries", /quer/],
  ["Connections", /connection/],
];

/** Parses Prometheus text: [{ name, labels, value, type, help }]. */
export function parseMetrics(text) {
  const types = {};
  const helps = {};
  const out = [];
  for (const line of text.split("\n")) {
    let m;
    if ((m = /^# TYPE (\S+) (\S+)/.exec(line))) types[m[1]] = m[2];
    else if ((m = /^# HELP (\S+) (.*)$/.exec(line))) helps[m[1]] = m[2];
    else if ((m = /^([a-zA-Z_:][\w:]*)(\{[^}]*\})?\s+(\S+)/.exec(line))) {
      const base = m[1].replace(/_(bucket|sum|count)$/, "");
      out.push({ name: m[1], labels: m[2] || "", value: Number(m[3]), type: types[m[1]] || types[base] || "", help: helps[m[1]] || helps[base] || "" });
    }
  }
  return out;
}

function shown(metric) {
  return /bytes/.test(metric.name) ? bytes(metric.value) : metric.value.toLocaleString();
}

export const statusPage = {
  id: "status",
  title: "Status",
  mount(el) {
    const rates = h("div", { id: "status-rates", class: "cards" });
    const cards = h("div", { id: "status-cards", class: "cards" });
    const table = h("table", { id: "metrics", class: "metrics" });
    const updated = h("span", { class: "muted" });
    el.append(h("div", { class: "toolbar" }, h("h2", {}, "Server status"), h("span", { class: "spacer" }), updated), rates, cards, h("h3", {}, "All metrics"), table);
    let previous = null;
    let timer = null;

    async function refresh() {
      let metrics;
      try {
        metrics = parseMetrics(await metricsText());
      } catch (e) {
        updated.textContent = `could not read /metrics: ${e.message}`;
        return;
      }
      const now = performance.now();
      const rate = (m) => {
        if (m.type !== "counter" || !previous) return "";
        const before = previous.values.get(m.name + m.labels);
        if (before === undefined) return "";
        const perSecond = (m.value - before) / ((now - previous.at) / 1000);
        return ` (${perSecond.toFixed(1)}/s)`;
      };
      rates.replaceChildren(
        ...RATES.map(([id, label, name, unit]) => {
          const m = metrics.find((x) => x.name === name && !x.labels);
          const before = previous ? previous.values.get(name) : undefined;
          let text = "measuring…";
          if (!m) text = "not reported by this server";
          else if (before !== undefined) text = `${((m.value - before) / ((now - previous.at) / 1000)).toFixed(1)} ${unit}`;
          return h("section", { class: "card metric-card rate-card" }, h("h3", {}, label), h("p", { id, "data-total": m ? String(m.value) : "" }, text));
        }),
      );
      const used = new Set();
      cards.replaceChildren(
        ...GROUPS.map(([title, pattern]) => {
          const mine = metrics.filter((m) => !used.has(m) && pattern.test(m.name.replace(/^hourglass_/, "")));
          mine.forEach((m) => used.add(m));
          return h(
            "section",
            { class: "card metric-card", "data-group": title },
            h("h3", {}, title),
            mine.length
              ? h("dl", {}, ...mine.slice(0, 12).flatMap((m) => [h("dt", { title: m.help }, m.name.replace(/^hourglass_/, "") + m.labels), h("dd", {}, shown(m) + rate(m))]))
              : h("p", { class: "muted" }, "not reported by this server"),
          );
        }),
      );
      table.replaceChildren(
        h("thead", {}, h("tr", {}, h("th", {}, "metric"), h("th", {}, "value"), h("th", {}, "type"), h("th", {}, "help"))),
        h("tbody", {}, ...metrics.map((m) => h("tr", {}, h("td", {}, h("code", {}, m.name + m.labels)), h("td", {}, shown(m) + rate(m)), h("td", {}, m.type), h("td", {}, m.help)))),
      );
      previous = { at: now, values: new Map(metrics.map((m) => [m.name + m.labels, m.value])) };
      updated.textContent = `updated ${new Date().toLocaleTimeString()}`;
    }

    refresh();
    timer = setInterval(refresh, REFRESH_MS);
    return () => clearInterval(timer);
  },
};
