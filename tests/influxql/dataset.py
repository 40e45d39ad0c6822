"""The data set of the InfluxQL differential test (tests/python/test_influxql_differential.py):
deterministic line protocol written identically to InfluxDB 1.6 and to Hourglass.

Everything but the "recent" slice is fixed: irregular times from BASE_S (2023-11-14T22:13:20Z,
1700000000 s) over about four hours, in millisecond precision, drawn from a private linear
congruential generator (not `random`, whose algorithms may change between Python versions).
Within one measurement every point has its own timestamp, so raw queries across series have
one defined row order. The recent slice (`recent_lines(now_s)`) is a few points a minute apart
before `now_s` rounded down to the minute, for `now()`-relative queries.

Measurements:
- `cpu`: tags `host` (a..e; `e` has no `region` tag), `region`; fields `usage_user`,
  `usage_system` (floats), `load` (integer).
- `weather`: tags `location` (values with a space, a comma and an equals sign, all escaped in
  line protocol), `sensor` (absent on some series); fields `temp` (float), `humidity` (integer,
  missing on some points), `desc` (string, missing on some points, with quotes and commas),
  `raining` (boolean).
- `disk`: tags `host`, `path`; fields `used` (integer), `free` (float), `reads` (an integer
  counter that resets, for `non_negative_derivative`).
- `scratch`: a few points, dropped by the last query of the corpus.

`python3 tests/influxql/dataset.py` prints the fixed part.
"""

from __future__ import annotations

BASE_S = 1_700_000_000
BASE_MS = BASE_S * 1000
DB = "hgtest"
PRECISION = "ms"


class Lcg:
    """Knuth's MMIX 64-bit linear congruential generator: the same numbers everywhere."""

    def __init__(self, seed: int):
        self.state = seed & 0xFFFF_FFFF_FFFF_FFFF

    def next(self) -> int:
        self.state = (self.state * 6364136223846793005 + 1442695040888963407) & 0xFFFF_FFFF_FFFF_FFFF
        return self.state >> 33  # 31 good bits

    def below(self, n: int) -> int:
        return self.next() % n

    def uniform(self, lo: float, hi: float, decimals: int = 2) -> float:
        return round(lo + (hi - lo) * (self.next() / float(1 << 31)), decimals)


def _fmt_float(x: float) -> str:
    # repr gives the shortest text that reads back as the same double, as both servers parse it.
    return repr(float(x))


CPU_SERIES = [
    ("a", "us-east"),
    ("b", "us-east"),
    ("c", "us-west"),
    ("d", "eu-central"),
    ("e", None),  # no region tag
]

WEATHER_SERIES = [
    # (location as written in line protocol, sensor or None)
    ("new\\ york", "s1"),
    ("paris", "s2"),
    ("a\\,b", "s3"),
    ("x\\=y", None),
    ("oslo", "s1"),
]

DESCS = ["sunny", "rain, heavy", 'say \\"hi\\"', "fog", "clear sky"]

DISK_SERIES = [("a", "/"), ("a", "/var"), ("b", "/"), ("b", "/data\\ dir")]


def _times(rng: Lcg, start_ms: int, n: int, min_gap_ms: int, max_gap_ms: int) -> list[int]:
    out, t = [], start_ms
    for _ in range(n):
        t += min_gap_ms + rng.below(max_gap_ms - min_gap_ms + 1)
        out.append(t)
    return out


def cpu_lines() -> list[str]:
    rng = Lcg(20)
    lines = []
    for t in _times(rng, BASE_MS, 2000, 1_000, 12_000):
        host, region = CPU_SERIES[rng.below(len(CPU_SERIES))]
        tags = f"host={host}" + (f",region={region}" if region else "")
        user = rng.uniform(0, 100)
        system = rng.uniform(0, 30)
        load = rng.below(16) - 2  # -2..13
        lines.append(
            f"cpu,{tags} usage_user={_fmt_float(user)},usage_system={_fmt_float(system)},load={load}i {t}"
        )
    return lines


def weather_lines() -> list[str]:
    rng = Lcg(4)
    lines = []
    for t in _times(rng, BASE_MS + 500, 1500, 2_000, 16_000):
        loc, sensor = WEATHER_SERIES[rng.below(len(WEATHER_SERIES))]
        tags = f"location={loc}" + (f",sensor={sensor}" if sensor else "")
        fields = [f"temp={_fmt_float(rng.uniform(-10, 35, 1))}"]
        if rng.below(4) != 0:
            fields.append(f"humidity={rng.below(101)}i")
        if rng.below(3) != 0:
            fields.append(f'desc="{DESCS[rng.below(len(DESCS))]}"')
        fields.append("raining=" + ("true" if rng.below(3) == 0 else "false"))
        lines.append(f"weather,{tags} {','.join(fields)} {t}")
    return lines


def disk_lines() -> list[str]:
    rng = Lcg(7)
    counters = [0] * len(DISK_SERIES)
    lines = []
    for t in _times(rng, BASE_MS + 250, 400, 10_000, 60_000):
        i = rng.below(len(DISK_SERIES))
        host, path = DISK_SERIES[i]
        if rng.below(25) == 0:
            counters[i] = rng.below(50)  # a counter reset
        else:
            counters[i] += rng.below(5000)
        used = 1000 + rng.below(9000)
        free = rng.uniform(0, 500, 3)
        lines.append(
            f"disk,host={host},path={path} used={used}i,free={_fmt_float(free)},reads={counters[i]}i {t}"
        )
    return lines


def scratch_lines() -> list[str]:
    return [f"scratch,k=v{i % 2} x={i}i {BASE_MS + i * 60_000}" for i in range(5)]


def fixed_lines() -> list[str]:
    """The fixed part, every measurement."""
    return cpu_lines() + weather_lines() + disk_lines() + scratch_lines()


def recent_now_s(start_s: float) -> int:
    """The anchor of the recent slice: the test's start rounded down to the minute."""
    return int(start_s) // 60 * 60


def recent_lines(now_s: int) -> list[str]:
    """cpu points of host a every minute and of host b every two minutes, from 50.5 to 1.5
    minutes before `now_s` (30 s before each minute mark, b 7 ms later)."""
    lines = []
    for k in range(1, 51):
        t = (now_s - k * 60 - 30) * 1000
        user = round((k * 7.31) % 100, 2)
        lines.append(f"cpu,host=a,region=us-east usage_user={_fmt_float(user)},usage_system=1.5,load={k % 7}i {t}")
        if k % 2 == 0:
            lines.append(f"cpu,host=b,region=us-east usage_user={_fmt_float(100 - user)},usage_system=2.5,load={k % 5}i {t + 7}")
    return lines


if __name__ == "__main__":
    print("\n".join(fixed_lines()))
