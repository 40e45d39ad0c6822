"""`hourglass serve --config FILE` (TOML): every serve flag has a key, flags and HOURGLASS_*
variables override the file, and a bad file stops the start with the file, line and key named;
`hourglass config example` prints every key with its default and `hourglass config check` checks a
file without starting. Runs the real binary."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
import requests

TIMEOUT_S = 30


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(extra: dict | None = None) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOURGLASS_") or k == "HOURGLASS_LOG"}
    env.update(extra or {})
    return env


def _run(binary: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(binary), *args], capture_output=True, text=True, timeout=TIMEOUT_S, env=_env(env))


class ConfiguredServer:
    """A server started with only `--config FILE` (plus extra args): the file decides its ports."""

    def __init__(self, binary: Path, config: Path, args=(), env=None):
        self.proc = subprocess.Popen(
            [str(binary), "serve", "--config", str(config), *args],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            env=_env(env), text=True,
        )

    def wait_healthy(self, url: str) -> None:
        deadline = time.monotonic() + TIMEOUT_S
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"server exited: {self.proc.stderr.read()}"
            try:
                if requests.get(f"{url}/health", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.05)
        pytest.fail(f"{url}/health did not answer")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def configured(hourglass_bin):
    started: list[ConfiguredServer] = []

    def start(config: Path, args=(), env=None) -> ConfiguredServer:
        s = ConfiguredServer(hourglass_bin, config, args, env)
        started.append(s)
        return s

    yield start
    for s in started:
        s.stop()


def _serve_flags(binary: Path) -> list[str]:
    """Every long flag of `hourglass serve --help`, as configuration keys."""
    help_text = _run(binary, "serve", "--help").stdout
    flags = set(re.findall(r"^\s+(?:-\w, )?--([a-z0-9-]+)", help_text, re.M))
    return sorted(f.replace("-", "_") for f in flags - {"help", "version", "config"})


def test_the_file_configures_the_server(hourglass_bin, tmp_path, configured):
    http_port, pg_port = _free_port(), _free_port()
    data = tmp_path / "data"
    config = tmp_path / "hourglass.toml"
    config.write_text(
        "# ports and directory come from the file\n"
        f'data_dir = "{data}"\n'
        f'http_addr = "127.0.0.1:{http_port}"\n'
        f'pg_addr = "127.0.0.1:{pg_port}"\n'
        "max_body_mb = 1\n"
        "default_memory_retention_hours = 12\n"
    )
    s = configured(config)
    url = f"http://127.0.0.1:{http_port}"
    s.wait_healthy(url)
    r = requests.post(f"{url}/api/v3/write_lp", params={"db": "cfg"}, data="m,h=a v=1 1700000000000000000", timeout=TIMEOUT_S)
    assert r.status_code == 204, r.text
    # max_body_mb = 1: a 2 MiB body is refused.
    big = ("m,h=a v=1 1700000000000000000\n" * 80_000).encode()
    assert len(big) > 2 << 20
    r = requests.post(f"{url}/api/v3/write_lp", params={"db": "cfg"}, data=big, timeout=TIMEOUT_S)
    assert r.status_code == 413, r.text
    # The table created by that write has the file's default memory retention.
    r = requests.post(f"{url}/api/v3/query_sql", json={"db": "cfg", "q": "SELECT count(*) AS n FROM m"}, timeout=TIMEOUT_S)
    assert r.status_code == 200 and r.json()[0]["n"] == 1, r.text
    assert (data / "catalog").exists() or any(data.iterdir()), "the file's data_dir is used"
    with socket.create_connection(("127.0.0.1", pg_port), timeout=5):
        pass  # PostgreSQL listens on the file's pg_addr
    s.stop()


def test_flags_and_environment_override_the_file(hourglass_bin, tmp_path, configured):
    http_port, pg_port, flag_port = _free_port(), _free_port(), _free_port()
    config = tmp_path / "hourglass.toml"
    config.write_text(
        f'data_dir = "{tmp_path / "data"}"\n'
        f'http_addr = "127.0.0.1:{http_port}"\n'
        f'pg_addr = "127.0.0.1:{pg_port}"\n'
        "max_body_mb = 1\n"
    )
    # The flag beats the file's http_addr; the variable beats its max_body_mb.
    s = configured(config, args=["--http-addr", f"127.0.0.1:{flag_port}"], env={"HOURGLASS_MAX_BODY_MB": "8"})
    url = f"http://127.0.0.1:{flag_port}"
    s.wait_healthy(url)
    body = ("m,h=a v=1 1700000000000000000\n" * 80_000).encode()
    r = requests.post(f"{url}/api/v3/write_lp", params={"db": "cfg"}, data=body, timeout=TIMEOUT_S)
    assert r.status_code == 204, r.text
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{http_port}/health", timeout=2)


@pytest.mark.parametrize(
    "text, line, key, words",
    [
        ('memory_budget_mb = 64\nhttp_adr = "127.0.0.1:1"\n', 2, "http_adr", "unknown key"),
        ("\n\nmemory-budget-mb = 64\n", 3, "memory-budget-mb", "did you mean `memory_budget_mb`"),
        ('memory_budget_mb = "lots"\n', 1, "memory_budget_mb", "invalid value 'lots' for '--memory-budget-mb"),
        ('data_dir = "x"\nhttp_addr = "somewhere"\n', 2, "http_addr", "invalid value 'somewhere'"),
        ("require_auth = 3\n", 1, "require_auth", "invalid value '3'"),
        ('http_addr = ["127.0.0.1:1"]\n', 1, "http_addr", "not an array"),
        ("[http_addr]\nport = 1\n", 1, "http_addr", "expects a value, not a table"),
        ("[http]\naddr = 1\n", 1, "http", "unknown key"),
        ('config = "other.toml"\n', 1, "config", "unknown key"),
    ],
)
def test_bad_keys_and_values_stop_the_start_naming_file_line_and_key(hourglass_bin, tmp_path, text, line, key, words):
    config = tmp_path / "bad.toml"
    config.write_text(text)
    r = _run(hourglass_bin, "serve", "--config", str(config), "--data-dir", str(tmp_path / "d"),
             "--http-addr", "127.0.0.1:0", "--pg-addr", "127.0.0.1:0")
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert f"{config}:{line}: key `{key}`" in r.stderr, r.stderr
    assert words in r.stderr, r.stderr
    assert not (tmp_path / "d").exists(), "nothing starts on a bad file"
    # `config check` reports the same.
    c = _run(hourglass_bin, "config", "check", str(config))
    assert c.returncode == 2 and f"{config}:{line}: key `{key}`" in c.stderr, c.stderr


def test_malformed_toml_and_a_missing_file(hourglass_bin, tmp_path):
    config = tmp_path / "broken.toml"
    config.write_text('data_dir = "x"\nmemory_budget_mb = \n')
    r = _run(hourglass_bin, "serve", "--config", str(config))
    assert r.returncode == 2 and f"{config}:2: not valid TOML" in r.stderr, r.stderr
    missing = tmp_path / "nope.toml"
    r = _run(hourglass_bin, "serve", "--config", str(missing))
    assert r.returncode == 2 and str(missing) in r.stderr and "cannot read" in r.stderr, r.stderr
    # The file is also found through HOURGLASS_CONFIG.
    r = _run(hourglass_bin, "serve", env={"HOURGLASS_CONFIG": str(config)})
    assert r.returncode == 2 and f"{config}:2:" in r.stderr, r.stderr


def test_example_lists_every_serve_flag_with_its_default_and_loads_uncommented(hourglass_bin, tmp_path):
    r = _run(hourglass_bin, "config", "example")
    assert r.returncode == 0, r.stderr
    example = r.stdout
    keys = re.findall(r"^# ([a-z0-9_]+) = ", example, re.M)
    flags = _serve_flags(hourglass_bin)
    assert flags and set(flags) <= set(keys), set(flags) - set(keys)
    assert '# memory_budget_mb = 1024\n' in example
    assert '# http_addr = "127.0.0.1:8086"\n' in example
    assert "HOURGLASS_MEMORY_BUDGET_MB" in example
    # Uncomment every flag key that has a default: the file is accepted and changes nothing.
    lines = [ln[2:] for ln in example.splitlines()
             if re.match(r"^# [a-z0-9_]+ = ", ln) and "(not set)" not in ln and ln[2:].split(" = ")[0] in flags]
    config = tmp_path / "example.toml"
    config.write_text("\n".join(lines) + "\n")
    c = _run(hourglass_bin, "config", "check", str(config))
    assert c.returncode == 0, c.stderr
    assert c.stdout.strip() == f"{config}: ok"


MQTT_OK = '[[mqtt]]\nname = "a"\nurl = "mqtt://127.0.0.1:1"\ntopics = ["t/#"]\ndatabase = "iot"\n'


@pytest.mark.parametrize(
    "text, line, key, words",
    [
        # serde's own errors inside a section: the line of the offending key.
        (MQTT_OK + "\n[[mqtt]]\nname = \"b\"\nurl = \"mqtt://h\"\ntopicz = [\"x\"]\n", 10, None, "unknown field `topicz`"),
        # the owner's checks: the line of the subscription, the key named.
        (MQTT_OK + "\n[[mqtt]]\nname = \"b\"\nurl = \"http://h\"\ntopics = [\"x\"]\ndatabase = \"d\"\n", 7, "mqtt[b].url", "mqtt"),
        (MQTT_OK + "\n" + MQTT_OK, 7, "mqtt[a].name", "another subscription has this name"),
        ("mqtt = \"x\"\n", 1, "mqtt", "is a section"),
    ],
)
def test_mqtt_sections_are_checked_with_line_and_key(hourglass_bin, tmp_path, text, line, key, words):
    config = tmp_path / "mqtt.toml"
    config.write_text(text)
    r = _run(hourglass_bin, "config", "check", str(config))
    assert r.returncode == 2, r.stderr
    where = f"{config}:{line}: key `{key}`" if key else f"{config}:{line}: "
    assert where in r.stderr and words in r.stderr, r.stderr
    config.write_text(MQTT_OK)
    assert _run(hourglass_bin, "config", "check", str(config)).returncode == 0


def test_the_example_subscribes_to_nothing_until_uncommented(hourglass_bin, tmp_path):
    example = _run(hourglass_bin, "config", "example").stdout
    assert "\n#[[mqtt]]\n" in example and "\n[[mqtt]]" not in example
    config = tmp_path / "example.toml"
    config.write_text(example)
    r = _run(hourglass_bin, "config", "check", str(config))
    assert r.returncode == 0, r.stderr
    # Removing the bare `#` of the section's lines gives a valid subscription.
    start = example.index("#[[mqtt]]")
    section = [ln[1:] for ln in example[start:].splitlines() if ln.startswith("#") and not ln.startswith("# ")]
    assert len(section) > 5
    config.write_text("\n".join(section) + "\n")
    r = _run(hourglass_bin, "config", "check", str(config))
    assert r.returncode == 0, (r.stderr, config.read_text())
