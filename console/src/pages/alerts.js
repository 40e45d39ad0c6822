// The alerts page: the alert rules of /api/v3/alert_rules with their evaluation state (state,
// health and last error, last evaluation and its duration, active instances; a rule expands to
// its query, labels, annotations and instances), a form that creates (POST) or replaces (PUT) a
// rule and shows the API's field error next to that field, delete with a confirmation, and the
// history of state changes from system.alerts (operators only: others see the refusal), newest
// first and filterable by rule name. Everything refreshes every few seconds while mounted.
import { apiJson, querySql } from "../api.js";
import { h } from "../dom.js";
import { loadSchema } from "../schema.js";

const BASE = "/api/v3/alert_rules";
const REFRESH_MS = 3000;
const HISTORY_LIMIT = 200;
/** The form's fields: [rule field, label, input kind, placeholder]. */
const FIELDS = [
  ["name", "Name", "input", "HighPrice"],
  ["database", "Database", "input", "market"],
  ["dialect", "Dialect", "select", ""],
  ["query", "Query", "textarea", "SELECT symbol, max(price) AS value FROM trades GROUP BY symbol"],
  ["condition", "Condition", "input", "any row, or value > 300"],
  ["interval", "Interval", "input", "1m"],
  ["for", "For", "input", "0s"],
  ["keep_firing_for", "Keep firing for", "input", "0s"],
  ["labels", "Labels (key=value lines)", "textarea", "severity=page"],
  ["annotations", "Annotations (key=value lines)", "textarea", "summary={{ $labels.symbol }} at {{ $value }}"],
];

/** `key=value` lines as an object; throws naming the line that is not one. */
export function parsePairs(text, what) {
  const out = {};
  String(text)
    .split("\n")
    .forEach((line, i) => {
      if (!line.trim()) return;
      const at = line.indexOf("=");
      const key = at < 0 ? "" : line.slice(0, at).trim();
      if (!key) throw Object.assign(new Error(`${what} line ${i + 1}: expected key=value, got "${line.trim()}"`), { field: what });
      if (key in out) throw Object.assign(new Error(`${what} line ${i + 1}: "${key}" is given twice`), { field: what });
      out[key] = line.slice(at + 1).trim();
    });
  return out;
}

/** An object as `key=value` lines (the form's text of labels and annotations). */
export function formatPairs(object) {
  return Object.entries(object || {})
    .map(([k, v]) => `${k}=${v}`)
    .join("\n");
}

/** The form field an API error names: `labels.severity` is the labels field. */
export function formField(field) {
  const top = String(field || "").split(".")[0];
  return FIELDS.some(([f]) => f === top) ? top : "";
}

/** Instances still alerting (pending or firing; resolved ones are inactive). */
const active = (rule) => (rule.alerts || []).filter((a) => a.state !== "inactive");

function badge(kind, text) {
  return h("span", { class: `badge badge-${kind}` }, text);
}

function labelList(labels) {
  const entries = Object.entries(labels || {});
  if (!entries.length) return h("span", { class: "muted" }, "none");
  return h("span", { class: "alert-labels" }, ...entries.map(([k, v]) => h("code", { class: "alert-label", "data-label": k }, `${k}=${v}`)));
}

/** "12:00:01 (3 s ago)" for an RFC 3339 instant, "never" for none. */
function when(iso) {
  if (!iso) return "never";
  const t = new Date(iso);
  if (Number.isNaN(t.getTime())) return String(iso);
  const ago = Math.max(0, Math.round((Date.now() - t.getTime()) / 1000));
  return `${t.toLocaleTimeString()} (${ago} s ago)`;
}

function sqlString(text) {
  return `'${String(text).replaceAll("'", "''")}'`;
}

/**
 * The history's SQL: the latest changes, newest first, of rules whose name contains `filter`.
 * Changes of one evaluation share their time (`for` 0s: pending then firing): pending goes last.
 */
export function historySql(filter) {
  const where = filter ? ` WHERE strpos(lower(rule), lower(${sqlString(filter)})) > 0` : "";
  const order = "time DESC, rule, labels, CASE kind WHEN 'pending' THEN 1 ELSE 0 END";
  return `SELECT time, rule, kind, labels, value FROM system.alerts${where} ORDER BY ${order} LIMIT ${HISTORY_LIMIT}`;
}

export const alertsPage = {
  id: "alerts",
  title: "Alerts",
  mount(el) {
    const updated = h("span", { id: "alerts-updated", class: "muted" });
    const listError = h("p", { id: "alert-rules-error", class: "error", hidden: true });
    const rulesBody = h("tbody", {});
    const rulesTable = h(
      "table",
      { id: "alert-rules", class: "metrics alert-rules" },
      h(
        "thead",
        {},
        h("tr", {}, ...["name", "database", "state", "health", "condition", "interval", "for", "last evaluation", "active", ""].map((t) => h("th", {}, t))),
      ),
      rulesBody,
    );
    const historyFilter = h("input", { id: "alert-history-filter", type: "search", placeholder: "rule name contains…" });
    const historyError = h("p", { id: "alert-history-error", class: "error", hidden: true });
    const historyBody = h("tbody", {});
    const historyTable = h(
      "table",
      { id: "alert-history", class: "metrics alert-history" },
      h("thead", {}, h("tr", {}, ...["time", "rule", "change", "labels", "value"].map((t) => h("th", {}, t)))),
      historyBody,
    );
    const form = ruleForm(() => refresh());
    el.append(
      h("div", { class: "toolbar" }, h("h2", {}, "Alert rules"), h("span", { class: "spacer" }), updated, h("button", { id: "alert-new", class: "primary", onclick: () => form.open(null) }, "New rule")),
      form.element,
      listError,
      rulesTable,
      h("div", { class: "toolbar" }, h("h3", {}, "History"), h("span", { class: "muted" }, `latest ${HISTORY_LIMIT} state changes (system.alerts)`), h("span", { class: "spacer" }), historyFilter),
      historyError,
      historyTable,
    );

    const expanded = new Set();
    let confirming = "";
    let stopped = false;
    let busy = false;
    let historyRequest = 0;

    function ruleRows(rule) {
      const open = expanded.has(rule.name);
      const live = active(rule);
      const health = rule.health || "unknown";
      const deleteButton = h(
        "button",
        {
          class: "alert-delete",
          onclick: async () => {
            if (confirming !== rule.name) {
              confirming = rule.name;
              renderRules(lastRules);
              return;
            }
            confirming = "";
            try {
              await apiJson("DELETE", `${BASE}/${encodeURIComponent(rule.name)}`);
              expanded.delete(rule.name);
              if (form.editing() === rule.name) form.close();
              showListError(null);
            } catch (e) {
              showListError(e);
            }
            refresh();
          },
        },
        confirming === rule.name ? "Delete: click again" : "Delete",
      );
      const row = h(
        "tr",
        { class: "alert-rule", "data-rule": rule.name, "data-state": rule.state, "data-health": health },
        h("td", {}, h("a", { href: "#/alerts", class: "alert-toggle", onclick: (e) => { e.preventDefault(); if (open) expanded.delete(rule.name); else expanded.add(rule.name); renderRules(lastRules); } }, `${open ? "▾" : "▸"} ${rule.name}`)),
        h("td", {}, rule.database || ""),
        h("td", {}, badge(rule.state, rule.state)),
        h("td", { class: "alert-health" }, badge(`health-${health}`, health), health === "err" && rule.lastError ? h("div", { class: "error alert-last-error" }, rule.lastError) : null),
        h("td", {}, h("code", {}, rule.condition)),
        h("td", {}, rule.interval),
        h("td", {}, rule.for),
        h("td", { class: "alert-last-evaluation" }, when(rule.lastEvaluation), rule.evaluationTime == null ? "" : h("div", { class: "muted" }, `took ${(rule.evaluationTime * 1000).toFixed(1)} ms`)),
        h("td", { class: "alert-active", "data-count": String(live.length) }, String(live.length)),
        h("td", { class: "alert-actions" }, h("button", { class: "alert-edit", onclick: () => form.open(rule) }, "Edit"), deleteButton),
      );
      if (!open) return [row];
      const instances = rule.alerts || [];
      const detail = h(
        "tr",
        { class: "alert-detail", "data-rule": rule.name },
        h(
          "td",
          { colspan: "10" },
          h(
            "dl",
            { class: "alert-props" },
            h("dt", {}, "Query"),
            h("dd", {}, h("pre", { class: "alert-query" }, rule.query), h("span", { class: "muted" }, `${rule.dialect || "sql"}${rule.owner ? `, runs as ${rule.owner}` : ""}`)),
            h("dt", {}, "Labels"),
            h("dd", {}, labelList(rule.labels)),
            h("dt", {}, "Annotations"),
            h("dd", {}, labelList(rule.annotations)),
            h("dt", {}, "Keep firing for"),
            h("dd", {}, rule.keep_firing_for),
          ),
          instances.length
            ? h(
                "table",
                { class: "columns alert-instances" },
                h("thead", {}, h("tr", {}, ...["labels", "value", "state", "active since", "fired at", "resolved at", "annotations"].map((t) => h("th", {}, t)))),
                h(
                  "tbody",
                  {},
                  ...instances.map((a) =>
                    h(
                      "tr",
                      { class: "alert-instance", "data-state": a.state, "data-labels": JSON.stringify(a.labels || {}) },
                      h("td", {}, labelList(a.labels)),
                      h("td", { class: "alert-value" }, a.value == null ? "" : String(a.value)),
                      h("td", {}, badge(a.state, a.state)),
                      h("td", {}, a.activeAt || ""),
                      h("td", {}, a.firedAt || ""),
                      h("td", {}, a.resolvedAt || ""),
                      h("td", {}, labelList(a.annotations)),
                    ),
                  ),
                ),
              )
            : h("p", { class: "muted" }, "No alert instances."),
        ),
      );
      return [row, detail];
    }

    let lastRules = [];
    function renderRules(rules) {
      lastRules = rules;
      rulesTable.dataset.loaded = "1";
      rulesBody.replaceChildren(
        ...(rules.length ? rules.flatMap(ruleRows) : [h("tr", {}, h("td", { colspan: "10", class: "muted" }, "No alert rules you may see. Create one with New rule."))]),
      );
    }

    function showListError(e) {
      listError.textContent = e ? `Alert rules: ${e.message}` : "";
      listError.hidden = !e;
    }

    async function refreshHistory() {
      const request = ++historyRequest;
      let rows;
      try {
        rows = await querySql(historySql(historyFilter.value.trim()));
      } catch (e) {
        if (stopped || request !== historyRequest) return;
        const operatorsOnly = e.status === 403 || e.status === 404 || /system\.alerts|alerts.*not found|not found.*alerts/i.test(e.message);
        historyError.textContent = operatorsOnly
          ? `The alert history (system.alerts) is for operators (admin on every database) only. The server answered: ${e.message}`
          : `Could not read the alert history: ${e.message}`;
        historyError.dataset.refused = operatorsOnly ? "1" : "";
        historyError.hidden = false;
        historyTable.hidden = true;
        return;
      }
      if (stopped || request !== historyRequest) return;
      historyError.hidden = true;
      historyTable.hidden = false;
      historyTable.dataset.loaded = "1";
      historyBody.replaceChildren(
        ...(rows.length
          ? rows.map((r) => {
              let labels = {};
              try {
                labels = JSON.parse(r.labels);
              } catch {
                labels = { labels: r.labels };
              }
              return h(
                "tr",
                { class: "alert-change", "data-rule": r.rule, "data-kind": r.kind, "data-time": String(r.time) },
                h("td", {}, String(r.time)),
                h("td", {}, r.rule),
                h("td", {}, badge(r.kind, r.kind)),
                h("td", {}, labelList(labels)),
                h("td", {}, r.value == null ? "" : String(r.value)),
              );
            })
          : [h("tr", {}, h("td", { colspan: "5", class: "muted" }, "No state changes."))]),
      );
    }

    async function refresh() {
      if (busy || stopped) return;
      busy = true;
      try {
        try {
          const answer = await apiJson("GET", BASE);
          if (stopped) return;
          renderRules(answer.rules || []);
          showListError(null);
        } catch (e) {
          if (!stopped) showListError(e);
        }
        await refreshHistory();
        if (!stopped) updated.textContent = `updated ${new Date().toLocaleTimeString()}`;
      } finally {
        busy = false;
      }
    }

    let filterTimer = null;
    historyFilter.addEventListener("input", () => {
      clearTimeout(filterTimer);
      filterTimer = setTimeout(refreshHistory, 250);
    });
    loadSchema()
      .then(({ databases }) => form.setDatabases(Object.keys(databases).sort()))
      .catch(() => {}); // the database field is free text anyway
    refresh();
    const timer = setInterval(refresh, REFRESH_MS);
    return () => {
      stopped = true;
      clearInterval(timer);
      clearTimeout(filterTimer);
    };
  },
};

/**
 * The create/replace form: `open(rule)` edits a rule (PUT; the name fixed) or, with null, a new
 * one (POST); errors go next to the field the API names. `saved` is called after a success.
 */
function ruleForm(saved) {
  const inputs = {};
  const errors = {};
  const databases = h("datalist", { id: "alert-databases" });
  const rows = FIELDS.map(([field, label, kind, placeholder]) => {
    const id = `alert-${field.replaceAll("_", "-")}`;
    let input;
    if (kind === "select") input = h("select", { id }, h("option", { value: "sql" }, "sql"), h("option", { value: "timestream" }, "timestream"));
    else if (kind === "textarea") input = h("textarea", { id, rows: field === "query" ? 4 : 2, placeholder });
    else input = h("input", { id, placeholder, list: field === "database" ? "alert-databases" : null });
    inputs[field] = input;
    errors[field] = h("span", { class: "field-error error", "data-error-for": field, hidden: true });
    return h("label", { class: `alert-field alert-field-${kind}` }, h("span", { class: "alert-field-label" }, label), input, errors[field]);
  });
  const title = h("h3", {}, "New rule");
  const formError = h("p", { id: "alert-form-error", class: "error", hidden: true });
  const save = h("button", { id: "alert-save", class: "primary", type: "submit" }, "Save");
  const cancel = h("button", { id: "alert-cancel", type: "button", onclick: () => close() }, "Cancel");
  const element = h("form", { id: "alert-form", class: "card alert-form", hidden: true }, title, h("div", { class: "alert-fields" }, ...rows), databases, formError, h("div", { class: "toolbar" }, save, cancel));
  let editing = null;

  function clearErrors() {
    for (const e of Object.values(errors)) {
      e.textContent = "";
      e.hidden = true;
    }
    formError.textContent = "";
    formError.hidden = true;
    element.querySelectorAll(".invalid").forEach((x) => x.classList.remove("invalid"));
  }

  function showError(e) {
    const field = formField(e.field);
    if (field) {
      errors[field].textContent = e.message;
      errors[field].hidden = false;
      inputs[field].classList.add("invalid");
      inputs[field].focus();
    } else {
      formError.textContent = e.field ? `${e.message} (field: ${e.field})` : e.message;
      formError.hidden = false;
    }
  }

  function open(rule) {
    editing = rule ? rule.name : null;
    title.textContent = rule ? `Edit rule ${rule.name}` : "New rule";
    const value = (f) => {
      if (!rule) return f === "dialect" ? "sql" : "";
      if (f === "labels" || f === "annotations") return formatPairs(rule[f]);
      return rule[f] == null ? "" : String(rule[f]);
    };
    for (const [f] of FIELDS) inputs[f].value = value(f);
    inputs.name.readOnly = Boolean(rule);
    clearErrors();
    element.hidden = false;
    element.dataset.mode = rule ? "edit" : "create";
    (rule ? inputs.query : inputs.name).focus();
  }

  function close() {
    editing = null;
    element.hidden = true;
    clearErrors();
  }

  element.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors();
    let body;
    try {
      body = {
        name: inputs.name.value.trim(),
        database: inputs.database.value.trim(),
        dialect: inputs.dialect.value,
        query: inputs.query.value,
        labels: parsePairs(inputs.labels.value, "labels"),
        annotations: parsePairs(inputs.annotations.value, "annotations"),
      };
      // Left empty: the server's default (condition `any row`, interval 1m, for 0s…).
      for (const f of ["condition", "interval", "for", "keep_firing_for"]) {
        const v = inputs[f].value.trim();
        if (v) body[f] = v;
      }
    } catch (e) {
      showError(e);
      return;
    }
    save.disabled = true;
    try {
      if (editing) await apiJson("PUT", `${BASE}/${encodeURIComponent(editing)}`, body);
      else await apiJson("POST", BASE, body);
      close();
      saved();
    } catch (e) {
      showError(e);
    } finally {
      save.disabled = false;
    }
  });

  return {
    element,
    open,
    close,
    editing: () => editing,
    setDatabases: (names) => databases.replaceChildren(...names.map((n) => h("option", { value: n }))),
  };
}
