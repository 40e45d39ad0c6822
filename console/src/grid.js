// The result grid: a virtual list (only the rows in view are in the DOM), so 100,000 rows
// scroll as fast as 100. Columns keep the order of the result; long values are cut with an
// ellipsis and shown whole in the cell's title.

const ROW_HEIGHT = 24;
const OVERSCAN = 8;

function cellText(v) {
  if (v === null || v === undefined) return "";
  if (typeof v === "object") return JSON.stringify(v);
  return String(v);
}

/** Renders `rows` (objects) with `columns` into `parent`; returns { destroy }. */
export function renderGrid(parent, columns, rows) {
  const width = columns.map((c) => {
    let w = c.length;
    for (let i = 0; i < Math.min(rows.length, 200); i++) w = Math.max(w, cellText(rows[i][c]).length);
    return Math.min(Math.max(w, 4), 48) * 8 + 16;
  });
  const total = width.reduce((a, b) => a + b, 0) + 64;
  const template = `64px ${width.map((w) => `${w}px`).join(" ")}`;

  const root = document.createElement("div");
  root.className = "grid";
  root.id = "grid";
  root.dataset.rows = String(rows.length);
  const header = document.createElement("div");
  header.className = "grid-header";
  header.style.gridTemplateColumns = template;
  header.style.width = `${total}px`;
  header.append(cell("#", "grid-num"), ...columns.map((c) => cell(c)));
  const viewport = document.createElement("div");
  viewport.className = "grid-viewport";
  const spacer = document.createElement("div");
  spacer.style.height = `${rows.length * ROW_HEIGHT}px`;
  spacer.style.width = `${total}px`;
  spacer.style.position = "relative";
  viewport.append(spacer);
  root.append(header, viewport);
  parent.append(root);

  let drawn = [-1, -1];
  function draw() {
    const first = Math.max(0, Math.floor(viewport.scrollTop / ROW_HEIGHT) - OVERSCAN);
    const count = Math.ceil((viewport.clientHeight || 400) / ROW_HEIGHT) + 2 * OVERSCAN;
    const last = Math.min(rows.length, first + count);
    if (first === drawn[0] && last === drawn[1]) return;
    drawn = [first, last];
    const fragment = document.createDocumentFragment();
    for (let i = first; i < last; i++) {
      const row = document.createElement("div");
      row.className = "grid-row";
      row.style.top = `${i * ROW_HEIGHT}px`;
      row.style.gridTemplateColumns = template;
      row.style.width = `${total}px`;
      row.append(cell(String(i + 1), "grid-num"), ...columns.map((c) => cell(cellText(rows[i][c]))));
      fragment.append(row);
    }
    spacer.replaceChildren(fragment);
  }
  viewport.addEventListener("scroll", () => {
    header.style.transform = `translateX(${-viewport.scrollLeft}px)`;
    draw();
  });
  draw();
  return {
    destroy() {
      root.remove();
    },
  };
}

function cell(text, className) {
  const d = document.createElement("div");
  d.className = className ? `grid-cell ${className}` : "grid-cell";
  d.textContent = text;
  if (text.length > 40) d.title = text;
  return d;
}

/** The columns of JSON rows: keys in the order first seen (all-null columns are absent). */
export function columnsOf(rows) {
  const seen = new Set();
  const step = Math.max(1, Math.floor(rows.length / 2000));
  for (let i = 0; i < rows.length; i += i < 100 ? 1 : step) for (const k of Object.keys(rows[i])) seen.add(k);
  return [...seen];
}
