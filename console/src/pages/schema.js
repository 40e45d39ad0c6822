// The schema browser: databases and their tables (from information_schema); a table's columns
// with their types and roles (time, dimension, measure), its row count, its settings (memory- and
// magnetic-store retention, magnetic-store writes) and its rows and bytes per tier (system.tables).
import { querySql } from "../api.js";
import { bytes, h } from "../dom.js";
import { loadSchema, loadTableStats } from "../schema.js";

function quoteIdent(name) {
  return `"${String(name).replaceAll('"', '""')}"`;
}

/** Fills `el` with a system.tables row: the table's settings and its rows and bytes per tier. */
function showStats(el, s) {
  if (!s) {
    el.replaceChildren(h("p", { class: "muted" }, "No settings reported for this table."));
    return;
  }
  const count = (n) => Number(n).toLocaleString();
  el.replaceChildren(
    h("h3", {}, "Settings"),
    h(
      "dl",
      { id: "table-properties" },
      h("dt", {}, "Memory store retention"),
      h("dd", { id: "memory-retention" }, `${s.memory_store_retention_hours} hours`),
      h("dt", {}, "Magnetic store retention"),
      h("dd", { id: "magnetic-retention" }, `${s.magnetic_store_retention_days} days`),
      h("dt", {}, "Magnetic store writes"),
      h("dd", { id: "magnetic-writes" }, s.magnetic_writes_enabled ? "enabled" : "disabled"),
      h("dt", {}, "Created"),
      h("dd", {}, String(s.created_at)),
      h("dt", {}, "Updated"),
      h("dd", {}, String(s.updated_at)),
    ),
    h("h3", {}, "Tiers"),
    h(
      "table",
      { id: "table-tiers", class: "columns" },
      h("thead", {}, h("tr", {}, h("th", {}, "tier"), h("th", {}, "rows"), h("th", {}, "bytes"), h("th", {}, "files"))),
      h(
        "tbody",
        {},
        h("tr", { "data-tier": "memory" }, h("td", {}, "memory"), h("td", { class: "tier-rows" }, count(s.memory_rows)), h("td", {}, bytes(s.memory_bytes)), h("td", {}, "")),
        h("tr", { "data-tier": "magnetic" }, h("td", {}, "magnetic"), h("td", { class: "tier-rows" }, count(s.magnetic_rows)), h("td", {}, bytes(s.magnetic_bytes)), h("td", {}, count(s.magnetic_files))),
      ),
    ),
  );
}

export const schemaPage = {
  id: "schema",
  title: "Schema",
  mount(el) {
    const tree = h("ul", { id: "schema-tree", class: "tree" }, h("li", { class: "muted" }, "loading…"));
    const detail = h("section", { id: "schema-detail", class: "card" }, h("p", { class: "muted" }, "Choose a table."));
    el.append(h("div", { class: "schema-layout" }, h("aside", { class: "card" }, h("h3", {}, "Databases"), tree), detail));

    function showTable(db, table, columns) {
      const rows = h("span", { id: "table-rows" }, "counting…");
      const role = (kind) => columns.filter((c) => c.kind === kind);
      const settings = h("div", { id: "table-settings" }, h("p", { class: "muted" }, "loading settings…"));
      detail.replaceChildren(
        h("h2", {}, `${db}.${table}`),
        h("p", {}, "Rows: ", rows),
        h(
          "table",
          { id: "columns", class: "columns" },
          h("thead", {}, h("tr", {}, h("th", {}, "column"), h("th", {}, "type"), h("th", {}, "role"))),
          h(
            "tbody",
            {},
            ...[...role("time"), ...role("dimension"), ...role("measure")].map((c) =>
              h("tr", { class: `col-${c.kind}` }, h("td", {}, c.name), h("td", {}, h("code", {}, c.type)), h("td", {}, c.kind)),
            ),
          ),
        ),
        settings,
      );
      loadTableStats()
        .then((stats) => showStats(settings, stats[`${db}.${table}`]))
        .catch((e) => settings.replaceChildren(h("p", { class: "muted" }, `Settings and tiers unavailable (${e.message}).`)));
      querySql(`SELECT count(*) AS n FROM ${quoteIdent(db)}.${quoteIdent(table)}`)
        .then((r) => (rows.textContent = Number(r[0].n).toLocaleString()))
        .catch((e) => (rows.textContent = `unavailable (${e.message})`));
    }

    loadSchema()
      .then(({ databases }) => {
        const names = Object.keys(databases).sort();
        tree.replaceChildren(
          ...(names.length ? [] : [h("li", { class: "muted" }, "No database you may read.")]),
          ...names.map((db) => {
            const tables = Object.keys(databases[db]).sort();
            return h(
              "li",
              { class: "db", "data-db": db },
              h("details", { open: true }, h("summary", {}, db, h("span", { class: "muted" }, ` ${tables.length} tables`)),
                h(
                  "ul",
                  {},
                  ...tables.map((t) =>
                    h(
                      "li",
                      {},
                      h("a", { href: "#/schema", class: "table-link", "data-table": `${db}.${t}`, onclick: (e) => { e.preventDefault(); showTable(db, t, databases[db][t]); } }, t),
                    ),
                  ),
                ),
              ),
            );
          }),
        );
      })
      .catch((e) => tree.replaceChildren(h("li", { class: "error" }, e.message)));
  },
};
