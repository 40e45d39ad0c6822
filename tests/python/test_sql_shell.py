"""`hourglass sql`, the SQL shell against a running server: statements from -e and from stdin,
output formats, and errors reported with a non-zero exit."""

import subprocess


def run_shell(hourglass_bin, server, *args, stdin=None):
    return subprocess.run(
        [str(hourglass_bin), "sql", "--host", server.url, *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_statements_from_flag_and_stdin(hourglass_bin, server):
    s = server()
    s.write_ok("m,host=a v=1\nm,host=b v=2\n", db="shell")
    out = run_shell(hourglass_bin, s, "--db", "shell", "-e", "SELECT host, v FROM m ORDER BY host", "--format", "csv")
    assert out.returncode == 0, out.stderr
    assert out.stdout == "host,v\na,1.0\nb,2.0\n"

    out = run_shell(
        hourglass_bin,
        s,
        stdin="SELECT count(*) AS n FROM shell.m;\nSELECT max(v) AS top\nFROM shell.m;\n",
    )
    assert out.returncode == 0, out.stderr
    assert "| n |" in out.stdout and "| 2 |" in out.stdout
    assert "| top |" in out.stdout and "| 2.0 |" in out.stdout


def test_errors_are_reported(hourglass_bin, server):
    s = server()
    s.write_ok("m v=1\n", db="shell")
    out = run_shell(hourglass_bin, s, "--db", "shell", "-e", "SELECT nope FROM m")
    assert out.returncode != 0
    assert "400" in out.stderr and "nope" in out.stderr
