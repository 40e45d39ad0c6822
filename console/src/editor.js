// The SQL editor of the console (CodeMirror 6): SQL highlighting, completion of databases,
// tables, columns, keywords and Hourglass's functions, Ctrl/Cmd-Enter to run the statement under
// the cursor, and an error marked at the position the server names.
import { basicSetup, EditorView } from "codemirror";
import { keymap } from "@codemirror/view";
import { Compartment, Prec } from "@codemirror/state";
import { sql, PostgreSQL } from "@codemirror/lang-sql";
import { setDiagnostics } from "@codemirror/lint";
import { HOURGLASS_FUNCTIONS } from "./functions.js";

/**
 * The statement around `pos` in `text`: statements are separated by `;` outside quotes and
 * comments. Returns { from, to, text } (text trimmed; from/to of the untrimmed span).
 */
export function statementAt(text, pos) {
  const bounds = [];
  let start = 0;
  let quote = null;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quote) {
      if (quote === "--" && c === "\n") quote = null;
      else if (quote === "/*" && c === "*" && text[i + 1] === "/") {
        quote = null;
        i++;
      } else if (c === quote) quote = null;
    } else if (c === "'" || c === '"') quote = c;
    else if (c === "-" && text[i + 1] === "-") quote = "--";
    else if (c === "/" && text[i + 1] === "*") quote = "/*";
    else if (c === ";") {
      bounds.push([start, i]);
      start = i + 1;
    }
  }
  bounds.push([start, text.length]);
  // On a blank statement (after the last `;`), the nearest statement before it.
  let index = bounds.findIndex(([a, b]) => pos >= a && pos <= b);
  if (index < 0) index = bounds.length - 1;
  while (index > 0 && !text.slice(bounds[index][0], bounds[index][1]).trim()) index--;
  const chosen = bounds[index];
  const [from, to] = chosen;
  const raw = text.slice(from, to);
  const lead = raw.length - raw.trimStart().length;
  return { from: from + lead, to, text: raw.trim() };
}

/**
 * The position (offset into `statement`) and length that an error message names, or null:
 * DataFusion's parser says "at Line: L, Column: C" (1-based) or "found: EOF" (the end); planning
 * errors name a table ("table 'a.b' not found") or a column ("No field named c").
 */
export function errorSpan(statement, message) {
  const m = /Line:\s*(\d+),\s*Column:\s*(\d+)/i.exec(message);
  if (m) {
    const lines = statement.split("\n");
    const line = Number(m[1]);
    if (line >= 1 && line <= lines.length) {
      let offset = 0;
      for (let i = 0; i < line - 1; i++) offset += lines[i].length + 1;
      offset = Math.min(offset + Math.max(Number(m[2]) - 1, 0), statement.length);
      const word = /^\w+/.exec(statement.slice(offset));
      return { offset, length: word ? word[0].length : 1 };
    }
  }
  if (/found: EOF/.test(message)) return { offset: statement.length, length: 0 };
  const named =
    /table '([^']+)' not found/i.exec(message) ||
    /No field named "?([\w.]+?)"?\.?(\s|$)/i.exec(message) ||
    /column '([^']+)'/i.exec(message);
  if (named) {
    const parts = named[1].split(".");
    // The longest dotted tail of the name that the statement contains.
    for (let k = Math.min(parts.length, 3); k >= 1; k--) {
      const tail = parts.slice(-k).join(".");
      const at = statement.toLowerCase().indexOf(tail.toLowerCase());
      if (at >= 0) return { offset: at, length: tail.length };
    }
  }
  return null;
}

/**
 * Makes the editor in `parent`. `onRun(statement)` is called with the statement under the cursor
 * ({ from, to, text }) on Ctrl/Cmd-Enter.
 */
export function createEditor(parent, { doc, onRun }) {
  const language = new Compartment();
  const sqlConfig = (schema) =>
    sql({
      dialect: PostgreSQL,
      upperCaseKeywords: true,
      schema,
    });
  const run = (view) => {
    onRun(statementAt(view.state.doc.toString(), view.state.selection.main.head));
    return true;
  };
  const view = new EditorView({
    doc,
    parent,
    extensions: [
      Prec.highest(keymap.of([{ key: "Mod-Enter", run }, { key: "Shift-Enter", run }])),
      basicSetup,
      language.of(sqlConfig({})),
      PostgreSQL.language.data.of({ autocomplete: functionSource }),
      EditorView.lineWrapping,
    ],
  });
  return {
    view,
    /** Replaces the completion schema: { db: { table: [columns] } } as SQLNamespace. */
    setSchema(namespace) {
      view.dispatch({ effects: language.reconfigure(sqlConfig(namespace)) });
    },
    /** Marks an error of the statement at [from, to) (or at the offset the message names). */
    markError(stmt, message) {
      const span = errorSpan(stmt.text, message);
      const docLength = view.state.doc.length;
      const from = Math.min(span ? stmt.from + span.offset : stmt.from, docLength);
      let to = Math.min(span ? from + span.length : stmt.to, docLength);
      // An error at the very end (a statement cut short) marks its last character.
      const start = to > from ? from : Math.max(from - 1, 0);
      if (to <= start) to = Math.min(start + 1, docLength);
      view.dispatch(setDiagnostics(view.state, [{ from: start, to, severity: "error", message }]));
    },
    clearErrors() {
      view.dispatch(setDiagnostics(view.state, []));
    },
    setText(text) {
      view.dispatch({ changes: { from: 0, to: view.state.doc.length, insert: text } });
    },
    text() {
      return view.state.doc.toString();
    },
    runCurrent() {
      return run(view);
    },
  };
}

// Hourglass's functions (DataFusion's and its own) as completions, next to the SQL language's.
function functionSource(context) {
  const word = context.matchBefore(/\w+/);
  if (!word || (word.from === word.to && !context.explicit)) return null;
  return {
    from: word.from,
    options: HOURGLASS_FUNCTIONS.map((name) => ({ label: name, type: "function", apply: `${name}(` })),
    validFor: /^\w*$/,
  };
}
