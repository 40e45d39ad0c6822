// The function names the SQL editor completes: Hourglass's own (Timestream's dialect, anomaly
// functions) and DataFusion's common ones. The query page adds the names the server lists in
// information_schema.routines when it has them (addFunctions).

export const HOURGLASS_FUNCTIONS = [
  // Timestream / Hourglass
  "ago", "bin", "create_time_series", "interpolate_linear", "interpolate_locf", "interpolate_fill",
  "integral_trapezoidal", "to_milliseconds", "from_milliseconds", "from_nanoseconds",
  "from_unixtime", "date_add", "date_diff", "date_format", "date_parse", "approx_percentile",
  "map_agg", "multimap_agg", "bitwise_and_agg", "bitwise_or_agg", "element_at", "transform",
  "reduce", "zscore", "ewma", "mad",
  // DataFusion
  "abs", "avg", "ceil", "coalesce", "concat", "count", "date_bin", "date_trunc", "first_value",
  "floor", "greatest", "lag", "last_value", "lead", "least", "length", "lower", "max", "median",
  "min", "now", "nullif", "percentile_cont", "rank", "regexp_like", "regexp_replace",
  "round", "row_number", "split_part", "sqrt", "stddev", "sum", "to_timestamp", "trim", "upper",
  "var_pop", "approx_distinct", "approx_percentile_cont", "array_agg", "string_agg",
  "date_part", "extract", "corr", "covar_samp",
];

/** Adds function names (lower case, deduplicated). */
export function addFunctions(names) {
  const have = new Set(HOURGLASS_FUNCTIONS);
  for (const n of names) {
    const name = String(n).toLowerCase();
    if (/^\w+$/.test(name) && !have.has(name)) {
      have.add(name);
      HOURGLASS_FUNCTIONS.push(name);
    }
  }
}
