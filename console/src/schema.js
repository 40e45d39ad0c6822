// The schema the caller may read, from information_schema: databases, their tables and each
// table's columns with types, and the CodeMirror completion namespace made of them; and each
// table's settings and rows and bytes per tier, from system.tables.
import { querySql } from "./api.js";

const HIDDEN = new Set(["information_schema", "pg_catalog"]);

/**
 * { databases: { db: { table: [{ name, type, kind }] } }, namespace } where kind is "time",
 * "dimension" (text columns) or "measure" (the others).
 */
export async function loadSchema() {
  const rows = await querySql(
    "SELECT table_schema, table_name, column_name, data_type, ordinal_position FROM information_schema.columns " +
      "ORDER BY table_schema, table_name, ordinal_position",
  );
  const databases = {};
  for (const r of rows) {
    if (HIDDEN.has(r.table_schema)) continue;
    const tables = (databases[r.table_schema] ||= {});
    (tables[r.table_name] ||= []).push({ name: r.column_name, type: r.data_type, kind: kindOf(r.column_name, r.data_type) });
  }
  // Databases without tables are listed too.
  try {
    const schemata = await querySql("SELECT schema_name FROM information_schema.schemata");
    for (const s of schemata) if (!HIDDEN.has(s.schema_name)) databases[s.schema_name] ||= {};
  } catch {
    // the column list is enough
  }
  const namespace = {};
  for (const [db, tables] of Object.entries(databases)) {
    namespace[db] = {};
    for (const [t, cols] of Object.entries(tables)) namespace[db][t] = cols.map((c) => c.name);
  }
  return { databases, namespace };
}

/** The role of a column in Hourglass's model (Timestream's: time, dimensions, measures). */
export function kindOf(name, type) {
  const t = String(type);
  if (name === "time" || t.startsWith("Timestamp")) return "time";
  if (/Utf8|Dictionary/.test(t) && name !== "measure_value::varchar") return "dimension";
  return "measure";
}

/**
 * { "db.table": row } from system.tables: retention, magnetic-writes setting and rows, bytes and
 * files per tier of every table the caller may read ({} when the server has no such table).
 */
export async function loadTableStats() {
  const rows = await querySql(
    "SELECT database_name, table_name, memory_store_retention_hours, magnetic_store_retention_days, " +
      "magnetic_writes_enabled, memory_rows, memory_bytes, magnetic_rows, magnetic_bytes, magnetic_files, " +
      "created_at, updated_at FROM system.tables",
  );
  return Object.fromEntries(rows.map((r) => [`${r.database_name}.${r.table_name}`, r]));
}
