// The console's client of the Hourglass HTTP API: the token (kept in sessionStorage only, never
// localStorage or a cookie), SQL over /api/v3/query_sql and the text of /metrics. Every call
// carries `Authorization: Bearer TOKEN` when a token was given.

const TOKEN_KEY = "hourglass.token";

/** The error of a request: `status` (HTTP, 0 for a network failure) and the server's message. */
export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

export function token() {
  return sessionStorage.getItem(TOKEN_KEY) || "";
}

export function setToken(value) {
  if (value) sessionStorage.setItem(TOKEN_KEY, value);
  else sessionStorage.removeItem(TOKEN_KEY);
}

function headers(extra = {}) {
  const h = { ...extra };
  const t = token();
  if (t) h.Authorization = `Bearer ${t}`;
  return h;
}

// Listeners told when the server answers 401 (the login page takes over).
const unauthorizedListeners = [];
export function onUnauthorized(fn) {
  unauthorizedListeners.push(fn);
}

async function failure(response, notify = true) {
  const text = await response.text();
  let message = text;
  let field;
  try {
    const body = JSON.parse(text);
    message = body.error || body.message || text;
    field = body.data && body.data.field;
  } catch {
    // not JSON: the text itself
  }
  if (notify && response.status === 401) unauthorizedListeners.forEach((fn) => fn(message));
  const err = new ApiError(response.status, message || `HTTP ${response.status}`);
  // The request field the server names (`{"error": ..., "data": {"field": ...}}`), if any.
  err.field = field;
  return err;
}

async function send(path, init) {
  let response;
  try {
    response = await fetch(path, init);
  } catch (e) {
    throw new ApiError(0, `cannot reach the server: ${e.message}`);
  }
  if (!response.ok) throw await failure(response);
  return response;
}

/** Runs one SQL statement; `format` json (rows as objects), csv or parquet (a Blob). */
export async function querySql(q, { db = "", format = "json", signal } = {}) {
  const response = await send("/api/v3/query_sql", {
    method: "POST",
    headers: headers({ "Content-Type": "application/json" }),
    body: JSON.stringify({ db, q, format }),
    signal,
  });
  if (format === "json") return response.json();
  return response.blob();
}

/**
 * A JSON call of the HTTP API (`body`, if any, sent as JSON): the parsed answer, null for 204.
 * Errors are ApiError with the server's message and `field`; a 401 opens the login form.
 */
export async function apiJson(method, path, body) {
  const init = { method, headers: headers(body === undefined ? {} : { "Content-Type": "application/json" }) };
  if (body !== undefined) init.body = JSON.stringify(body);
  const response = await send(path, init);
  return response.status === 204 ? null : response.json();
}

/** The Prometheus text of /metrics. */
export async function metricsText() {
  const response = await send("/metrics", { headers: headers() });
  return response.text();
}

/**
 * Checks a token without keeping it: /metrics answers any valid token. Resolves to null when the
 * token is accepted, to the server's refusal otherwise.
 */
export async function checkToken(candidate) {
  let response;
  try {
    response = await fetch("/metrics", { headers: { Authorization: `Bearer ${candidate}` } });
  } catch (e) {
    return `cannot reach the server: ${e.message}`;
  }
  if (response.ok) return null;
  const err = await failure(response, false);
  return err.message;
}

/** True when the server asks for credentials (serve --require-auth) and we have none that work. */
export async function needsLogin() {
  const response = await fetch("/metrics", { headers: headers() }).catch(() => null);
  return response !== null && response.status === 401;
}
