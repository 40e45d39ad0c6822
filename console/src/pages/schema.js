// The schema browser: databases and their tables (from information_schema); a table's columns
// with their types and roles (time, dimension, measure) and its row count.
import { querySql } from "../api.js";
import { h } from "../dom.js";
import { loadSchema } from "../schema.js";

function quoteIdent(name) {
  return `"${String(name).replaceAll('"', '""')}"`;
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
        h(
          "p",
          { class: "muted" },
          "Retention and magnetic-store settings: DescribeTable of the Timestream API ",
          h("code", {}, "aws timestream-write describe-table"),
          ".",
        ),
      );
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
