"""InfluxQL differential test (issue 20, part 4): InfluxDB 1.6 (Debian's `influxd`) and Hourglass
get the same line protocol (tests/influxql/dataset.py, millisecond precision), then every query of
tests/influxql/queries.txt runs against both through `/query` with the same parameters and the
answers are compared after normalising only formatting (tests/influxql/corpus.py: number
rendering with a relative tolerance of 1e-9, key order, row order where the corpus marks
InfluxDB's own order undefined).

A query must give the same answer, or be listed with its id and a reason in the "Known
differences" table of docs/protocols/influxql.md; a listed query that now matches fails too, so
the table stays honest (listed differences show as xfail). InfluxDB's answer is also checked
against the corpus's intent: an error exactly for the `err.*` queries and those flagged `error`.
Both servers run once for the module and are stopped at its end, also on failure.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest
import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "influxql"))

import corpus  # noqa: E402
import dataset  # noqa: E402
import influxd  # noqa: E402

QUERIES = corpus.load_queries()
KNOWN = corpus.load_known_differences()
NOW_RETRIES = 2  # a now()-relative answer may change between the two requests: ask again


class Pair:
    def __init__(self, influx_url: str, hourglass_url: str):
        self.influx_url = influx_url
        self.hourglass_url = hourglass_url
        self.session = requests.Session()

    def ask(self, q: corpus.Query):
        a = corpus.run(self.session, self.influx_url, dataset.DB, q)
        b = corpus.run(self.session, self.hourglass_url, dataset.DB, q)
        return a, b


def _write(session: requests.Session, url: str, body: bytes, who: str) -> None:
    r = session.post(
        f"{url}/write",
        params={"db": dataset.DB, "precision": dataset.PRECISION},
        data=body,
        headers={"Content-Type": "text/plain; charset=utf-8"},
        timeout=60,
    )
    assert r.status_code == 204, f"{who}: writing the data set failed: {r.status_code} {r.text[:2000]}"


@pytest.fixture(scope="module")
def pair(module_server, tmp_path_factory):
    if not influxd.available():
        pytest.fail("influxd is not installed: run scripts/install-test-deps.sh (Debian package influxdb)")
    ix = influxd.InfluxD(str(tmp_path_factory.mktemp("influxdb")))
    try:
        ix.start()
        hg = module_server()
        p = Pair(ix.url, hg.url)
        # The database: InfluxDB needs it created; Hourglass gets the same statement (its writes
        # would create the database anyway, so its answer is not checked here: ddl.* queries are).
        r = p.session.post(f"{ix.url}/query", params={"q": f"CREATE DATABASE {dataset.DB}"}, timeout=30)
        assert r.status_code == 200 and "error" not in r.text, f"influxdb CREATE DATABASE: {r.text}"
        p.session.post(f"{hg.url}/query", params={"q": f"CREATE DATABASE {dataset.DB}"}, timeout=30)
        now_s = dataset.recent_now_s(time.time())
        body = "\n".join(dataset.fixed_lines() + dataset.recent_lines(now_s)).encode()
        _write(p.session, ix.url, body, "influxdb")
        _write(p.session, hg.url, body, "hourglass")
        yield p
    finally:
        ix.stop()


def test_corpus_and_known_differences_table():
    assert len(QUERIES) >= 150, f"the corpus has {len(QUERIES)} queries, at least 150 are required"
    ids = {q.id for q in QUERIES}
    stale = sorted(set(KNOWN) - ids)
    assert not stale, f"docs/protocols/influxql.md lists ids that are not in queries.txt: {stale}"
    empty = sorted(k for k, why in KNOWN.items() if not why.strip("` "))
    assert not empty, f"known differences without a reason: {empty}"


def test_normalising_is_only_formatting():
    """The comparison forgives number rendering and key order, and nothing else."""
    q = corpus.Query("t.plain", "SELECT", 1)
    qu = corpus.Query("t.unordered", "SHOW DATABASES", 1, flags={"unordered"})

    def ans(body, status=200):
        return corpus.Answer(status, "application/json", body)

    base = '{"results":[{"statement_id":0,"series":[{"name":"m","columns":["time","v"],"values":[["t1",1.5],["t2",2]]}]}]}'
    same = '{"results":[{"series":[{"values":[["t1",1.5000000000000002],["t2",2.0]],"columns":["time","v"],"name":"m"}],"statement_id":0}]}'
    assert corpus.compare(q, ans(base), ans(same)) == []
    assert corpus.compare(q, ans(base), ans(base.replace("1.5", "1.5001")))
    assert corpus.compare(q, ans(base), ans(base.replace('"t1"', '"t0"')))
    assert corpus.compare(q, ans(base), ans(base.replace("2]]", "true]]")))
    assert corpus.compare(q, ans(base), ans(base, status=400))
    swapped = base.replace('["t1",1.5],["t2",2]', '["t2",2],["t1",1.5]')
    assert corpus.compare(q, ans(base), ans(swapped))
    assert corpus.compare(qu, ans(base), ans(swapped)) == []
    assert corpus.compare(q, ans(base), ans(base.replace('"name":"m",', '"name":"m","tags":{"a":""},')))


def _report(q: corpus.Query, diffs: list[str], a: corpus.Answer, b: corpus.Answer) -> str:
    opts = " ".join([f"{k}={v}" for k, v in q.options.items()] + sorted(q.flags))
    return "\n".join(
        [
            f"{q.id} (queries.txt line {q.line}){' [' + opts + ']' if opts else ''}: {q.text}",
            *("  " + d for d in diffs),
            "  influxdb:  " + a.short(),
            "  hourglass: " + b.short(),
        ]
    )


@pytest.mark.parametrize("q", QUERIES, ids=[q.id for q in QUERIES])
def test_query(pair, q):
    a, b = pair.ask(q)
    # The corpus says what InfluxDB should do: an error exactly for the intended error cases.
    if corpus.answer_has_error(q, a) != q.expects_error:
        pytest.fail(
            f"{q.id}: InfluxDB {'failed' if corpus.answer_has_error(q, a) else 'succeeded'} but the corpus "
            f"{'expects' if q.expects_error else 'does not expect'} an error: {a.short()}",
            pytrace=False,
        )
    diffs = corpus.compare(q, a, b)
    tries = 0
    while diffs and q.uses_now and tries < NOW_RETRIES:
        tries += 1
        a, b = pair.ask(q)
        diffs = corpus.compare(q, a, b)
    if q.id in KNOWN:
        if not diffs:
            pytest.fail(
                f"{q.id} is listed in docs/protocols/influxql.md as a known difference "
                f"({KNOWN[q.id]}) but both servers now give the same answer: remove it from the table",
                pytrace=False,
            )
        pytest.xfail(f"known difference: {KNOWN[q.id]}")
    if diffs:
        pytest.fail(
            "answers differ (fix, or list the id in docs/protocols/influxql.md with a reason):\n"
            + _report(q, diffs, a, b),
            pytrace=False,
        )
