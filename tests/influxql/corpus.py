"""The InfluxQL differential test's corpus and comparison: reads tests/influxql/queries.txt,
sends one query to a server's `/query`, normalises an answer (only what is formatting: number
rendering, key order, and row order where a query says InfluxDB's own order is undefined),
compares two answers and renders a compact diff, and reads the "Known differences" table of
docs/protocols/influxql.md."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import requests

HERE = Path(__file__).resolve().parent
QUERIES_PATH = HERE / "queries.txt"
DOC_PATH = HERE.parents[1] / "docs" / "protocols" / "influxql.md"

REL_TOL = 1e-9
ABS_TOL = 1e-12
QUERY_TIMEOUT_S = 30

ID_RE = re.compile(r"^[a-z][a-z0-9_]*\.[a-z0-9_]+$")
PASSTHROUGH = {"epoch", "rp", "u", "p", "pretty"}  # sent as query parameters as written
OPTION_KEYS = PASSTHROUGH | {"db", "method", "chunked", "accept"}
OPTION_FLAGS = {"unordered", "series_unordered", "error"}


@dataclass
class Query:
    id: str
    text: str
    line: int
    options: dict = field(default_factory=dict)
    flags: set = field(default_factory=set)

    @property
    def uses_now(self) -> bool:
        return "now()" in self.text.lower()

    @property
    def expects_error(self) -> bool:
        return self.id.startswith("err.") or "error" in self.flags


def load_queries(path: Path = QUERIES_PATH) -> list[Query]:
    """Parses the corpus; raises ValueError naming the line of a malformed entry."""
    queries: list[Query] = []
    seen: dict[str, int] = {}
    for n, raw in enumerate(path.read_text().splitlines(), start=1):
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        if raw[0].isspace():
            if not queries:
                raise ValueError(f"{path}:{n}: continuation line before any query")
            queries[-1].text += " " + raw.strip()
            continue
        qid, _, rest = raw.partition(" ")
        if not ID_RE.match(qid):
            raise ValueError(f"{path}:{n}: bad query id {qid!r} (expected group.name, lowercase)")
        if qid in seen:
            raise ValueError(f"{path}:{n}: query id {qid!r} already used on line {seen[qid]}")
        seen[qid] = n
        rest = rest.strip()
        options: dict = {}
        flags: set = set()
        if rest.startswith("["):
            end = rest.find("]")
            if end < 0:
                raise ValueError(f"{path}:{n}: unclosed option list")
            for tok in rest[1:end].split():
                key, eq, value = tok.partition("=")
                if eq:
                    if key not in OPTION_KEYS:
                        raise ValueError(f"{path}:{n}: unknown option {key!r}")
                    options[key] = value
                elif tok in OPTION_FLAGS:
                    flags.add(tok)
                else:
                    raise ValueError(f"{path}:{n}: unknown flag {tok!r}")
            rest = rest[end + 1 :].strip()
        queries.append(Query(qid, rest, n, options, flags))
    return queries


def load_known_differences(path: Path = DOC_PATH) -> dict[str, str]:
    """id -> reason, from the table under the "Known differences" heading: rows
    `| \\`id\\` | reason |` (the id may be written with or without backticks)."""
    known: dict[str, str] = {}
    try:
        text = path.read_text()
    except FileNotFoundError:
        return known
    in_section = False
    for line in text.splitlines():
        if line.startswith("#"):
            in_section = line.lstrip("#").strip().lower().startswith("known differences")
            continue
        if not in_section or not line.startswith("|"):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 2:
            continue
        qid = cells[0].strip("`").strip()
        if ID_RE.match(qid):
            known[qid] = " | ".join(cells[1:]).strip()
    return known


# -- running --------------------------------------------------------------------------------------


@dataclass
class Answer:
    status: int
    content_type: str
    body: str

    def short(self, limit: int = 600) -> str:
        body = self.body.strip()
        text = body if len(body) <= limit else body[:limit] + f"... ({len(body)} chars)"
        return f"HTTP {self.status}: {text}"


def run(session: requests.Session, url: str, db: str, q: Query) -> Answer:
    params: dict = {}
    dbname = q.options.get("db", db)
    if dbname:
        params["db"] = dbname
    if q.text:
        params["q"] = q.text
    for key in sorted(PASSTHROUGH & set(q.options)):
        params[key] = q.options[key]
    if "chunked" in q.options:
        params["chunked"] = "true"
        params["chunk_size"] = q.options["chunked"]
    headers = {}
    if q.options.get("accept") == "csv":
        headers["Accept"] = "application/csv"
    if q.options.get("method", "GET").upper() == "POST":
        r = session.post(f"{url}/query", data=params, headers=headers, timeout=QUERY_TIMEOUT_S)
    else:
        r = session.get(f"{url}/query", params=params, headers=headers, timeout=QUERY_TIMEOUT_S)
    return Answer(r.status_code, r.headers.get("Content-Type", ""), r.text)


# -- normalising ----------------------------------------------------------------------------------


def _json_documents(text: str):
    """One JSON document, or the stream of documents of a chunked answer."""
    dec = json.JSONDecoder()
    docs, i, n = [], 0, len(text)
    while True:
        while i < n and text[i].isspace():
            i += 1
        if i >= n:
            break
        doc, i = dec.raw_decode(text, i)
        docs.append(doc)
    if not docs:
        raise ValueError("empty body")
    return docs


def _csv_cell(cell: str):
    try:
        return int(cell)
    except ValueError:
        pass
    try:
        return float(cell)
    except ValueError:
        return cell


def normalise(q: Query, a: Answer):
    """The comparable form of an answer: {"status": N, "json"|"csv"|"text": value}. JSON is parsed (so key order and
    number rendering do not matter); CSV is split into lines and cells; anything else stays text.
    With `unordered`, the rows of every series are sorted."""
    if q.options.get("accept") == "csv" and a.status == 200:
        rows = [[_csv_cell(c) for c in line.split(",")] for line in a.body.strip("\n").split("\n")]
        return {"status": a.status, "csv": rows}
    try:
        docs = _json_documents(a.body)
    except ValueError:
        return {"status": a.status, "text": a.body.strip()}
    if "series_unordered" in q.flags:
        for doc in docs:
            for res in doc.get("results", []) if isinstance(doc, dict) else []:
                if isinstance(res.get("series"), list):
                    res["series"] = _merge_series(res["series"])
    if "unordered" in q.flags:
        for doc in docs:
            for res in doc.get("results", []) if isinstance(doc, dict) else []:
                for s in res.get("series", []) or []:
                    if isinstance(s.get("values"), list):
                        s["values"] = sorted(s["values"], key=lambda r: json.dumps(r, sort_keys=True))
    return {"status": a.status, "json": docs if "chunked" in q.options else docs[0]}


def _merge_series(series: list) -> list:
    """Series with the same name and tags merged into one (rows sorted by their first column,
    the time), the series sorted by name and tags."""
    merged: dict = {}
    for s in series:
        if not isinstance(s, dict):
            return series
        key = json.dumps([s.get("name"), s.get("tags")], sort_keys=True)
        if key in merged and merged[key].get("columns") == s.get("columns"):
            merged[key]["values"] = merged[key].get("values", []) + s.get("values", [])
        else:
            merged[key] = dict(s)
    for s in merged.values():
        if isinstance(s.get("values"), list):
            s["values"] = sorted(s["values"], key=lambda r: json.dumps(r[:1]))
    return [merged[k] for k in sorted(merged)]


# -- comparing ------------------------------------------------------------------------------------


def _is_number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _num_equal(a, b) -> bool:
    if isinstance(a, int) and isinstance(b, int):
        return a == b
    fa, fb = float(a), float(b)
    if math.isnan(fa) or math.isnan(fb):
        return math.isnan(fa) and math.isnan(fb)
    return math.isclose(fa, fb, rel_tol=REL_TOL, abs_tol=ABS_TOL)


def differences(expected, actual, path: str = "", out: list | None = None, limit: int = 8) -> list[str]:
    """Paths where two normalised values differ, at most `limit`."""
    if out is None:
        out = []
    if len(out) >= limit:
        return out
    if _is_number(expected) and _is_number(actual):
        if not _num_equal(expected, actual):
            out.append(f"{path or '.'}: influxdb {expected!r} != hourglass {actual!r}")
    elif isinstance(expected, dict) and isinstance(actual, dict):
        for k in sorted(set(expected) | set(actual), key=str):
            if k not in actual:
                out.append(f"{path}.{k}: missing in hourglass (influxdb {_brief(expected[k])})")
            elif k not in expected:
                out.append(f"{path}.{k}: unexpected in hourglass ({_brief(actual[k])})")
            else:
                differences(expected[k], actual[k], f"{path}.{k}", out, limit)
            if len(out) >= limit:
                break
    elif isinstance(expected, (list, tuple)) and isinstance(actual, (list, tuple)):
        if len(expected) != len(actual):
            out.append(f"{path or '.'}: influxdb has {len(expected)} items, hourglass {len(actual)}")
        for i, (e, a) in enumerate(zip(expected, actual)):
            differences(e, a, f"{path}[{i}]", out, limit)
            if len(out) >= limit:
                break
    elif type(expected) is not type(actual) or expected != actual:
        out.append(f"{path or '.'}: influxdb {_brief(expected)} != hourglass {_brief(actual)}")
    return out


def _brief(x, limit: int = 200) -> str:
    text = json.dumps(x) if not isinstance(x, str) else repr(x)
    return text if len(text) <= limit else text[:limit] + "..."


def compare(q: Query, influx: Answer, hourglass: Answer) -> list[str]:
    """[] when the answers are the same after normalising; else the differing paths."""
    a, b = normalise(q, influx), normalise(q, hourglass)
    out = []
    if a["status"] != b["status"]:
        out.append(f"HTTP status: influxdb {a['status']} != hourglass {b['status']}")
    kind_a = next(k for k in a if k != "status")
    kind_b = next(k for k in b if k != "status")
    if kind_a != kind_b:
        out.append(f"body: influxdb answered {kind_a}, hourglass {kind_b}")
        return out
    return out + differences(a[kind_a], b[kind_b])


def answer_has_error(q: Query, a: Answer) -> bool:
    """Whether an answer reports an error: a non-200 status, a top-level `error`, or an `error`
    in any statement's result."""
    if a.status != 200:
        return True
    value = normalise(q, a).get("json")
    if value is None:
        return False
    docs = value if isinstance(value, list) else [value]
    for doc in docs:
        if "error" in doc:
            return True
        if any("error" in res for res in doc.get("results", [])):
            return True
    return False
