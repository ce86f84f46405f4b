"""Reports on real multi-host runs: the matrix, one log per host, JUnit, HTML, unfinished commands.

One bench run (module fixture) on five real hosts, three sshd and two consoles (a
telnet server and a serial line, both with a real login), with a test that fails on
one host, one skipped on another, a reconnect and a password echoed by the device.
Its terminal output, log folder, JUnit file and HTML file are then checked by
several tests; the runs that stop a test halfway (pytest-timeout, Ctrl-C) and the
xdist run are their own.
"""

from __future__ import annotations

import html
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import tomli_w

from testlab.labfile import lab_dict
from testlab.serial import SerialConsole
from testlab.sshd import SshLab
from testlab.telnetd import TelnetServer

PW_ENV = "OTTO_REPORTS_PW"

#: Options of every inner run: no cache, none of the slow-loading plugins of this machine.
BASE_ARGS = ("-p", "no:cacheprovider", "-p", "no:hypothesispytest", "-p", "no:benchmark")

BENCH_TESTS = """
import os
import pytest
from pytest_otto import ShellResetWarning

def test_uname(host):
    assert host.run_sync("uname -s").only.output == "Linux"

def test_fails_on_ssh2(host):
    result = host.run_sync("echo checking $((6*7))")
    assert result.only.output == "checking 42"
    assert host.id != "ssh2", "fails on purpose on ssh2"

@pytest.mark.otto_hosts(pattern="^ssh")
def test_skipped_on_pw(host):
    if host.id == "sshpw":
        pytest.skip("not for the password host")
    host.run_sync("true")

@pytest.mark.otto_hosts(pattern="^(sshpw|tn)$")
def test_device_echoes_the_password(host):
    host.run_sync(f"echo the password is {os.environ['OTTO_REPORTS_PW']}")

@pytest.mark.otto_hosts(pattern="^ssh1$")
def test_reconnects(host):
    assert not host.run_sync("kill -9 $$").ok  # the shell dies under the command
    with pytest.warns(ShellResetWarning):
        assert host.run_sync("echo again").only.output == "again"
"""

HOSTS = ("ssh1", "ssh2", "sshpw", "tn", "sl")


@dataclass
class Run:
    """One finished inner pytest run and what it left behind."""

    folder: Path
    returncode: int
    stdout: str
    stderr: str

    @property
    def logs(self) -> Path:
        return self.folder / "logs"

    @property
    def report(self) -> Path:
        return self.folder / "report.html"

    def log(self, host: str) -> str:
        return (self.logs / f"{host}.log").read_text()


def run_pytest(folder: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 240) -> Run:
    """pytest in a subprocess in ``folder`` (its own rootdir, no ini file), bounded."""
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", *BASE_ARGS, f"--rootdir={folder}", *args],
        cwd=folder,
        env={**os.environ, **(env or {}), "COLUMNS": "80"},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return Run(folder, proc.returncode, proc.stdout, proc.stderr)


def write_lab(path: Path, servers: dict[str, object], ssh_user_pw: str = "sshpw") -> Path:
    data = lab_dict(
        servers,
        name="bench-reports",
        defaults={"connect_timeout": 10.0, "command_timeout": 30.0},
        user=lambda host_id, _: "ottopw" if host_id == ssh_user_pw else None,
        password=lambda host_id, _: {"env": PW_ENV} if host_id in (ssh_user_pw, "tn", "sl") else None,
    )
    if ssh_user_pw in data["hosts"]:
        del data["hosts"][ssh_user_pw]["key"]
        data["hosts"][ssh_user_pw]["agent"] = False
    path.write_text(tomli_w.dumps(data))
    return path


@pytest.fixture(scope="module")
def report_console(password_user: tuple[str, str]) -> Iterator[SerialConsole]:
    """A serial line with a login of this module's own (no other test holds it mid-login)."""
    with SerialConsole(login=True, name="ttyREP") as console:
        yield console


@pytest.fixture(scope="module")
def bench(
    tmp_path_factory: pytest.TempPathFactory,
    ssh_lab: SshLab,
    telnet_login_server: TelnetServer,
    report_console: SerialConsole,
    password_user: tuple[str, str],
) -> Run:
    """The bench run: five hosts, matrix, logs, HTML report and JUnit."""
    folder = tmp_path_factory.mktemp("bench")
    servers = {
        "ssh1": ssh_lab[0],
        "ssh2": ssh_lab[1],
        "sshpw": ssh_lab[2],
        "tn": telnet_login_server,
        "sl": report_console,
    }
    lab = write_lab(folder / "lab.toml", servers)
    (folder / "test_bench.py").write_text(BENCH_TESTS)
    return run_pytest(
        folder,
        f"--lab={lab}",
        "--otto-log-dir=logs",
        "--otto-report=report.html",
        "--junitxml=out.xml",
        env={PW_ENV: password_user[1]},
    )


def matrix_lines(stdout: str) -> list[str]:
    """The lines of the matrix section of a terminal output (up to the next section)."""
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if "otto test x host matrix" in line)
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("=")), len(lines))
    return lines[start + 1 : end]


def test_bench_run_outcomes(bench: Run) -> None:
    """The bench run itself: 5 hosts x 2 + 3 ssh + 2 + 1 nodes; ssh2 fails, sshpw skips."""
    assert bench.returncode == 1, bench.stdout[-3000:] + bench.stderr[-2000:]
    assert re.search(r"1 failed, 14 passed, 1 skipped", bench.stdout), bench.stdout[-2000:]


def test_terminal_matrix_fits_80_columns(bench: Run) -> None:
    """The summary ends with the matrix: a row per test, a column per host, totals per host."""
    lines = matrix_lines(bench.stdout)
    assert all(len(line) <= 80 for line in lines), lines
    header = next(line for line in lines if line.startswith("test "))
    assert header.split() == ["test", *HOSTS]
    rows = {line.split()[0]: line.split()[1:] for line in lines if line.startswith("test_bench.py::")}
    assert list(rows) == [  # file order, though pytest ran them host by host
        "test_bench.py::test_uname",
        "test_bench.py::test_fails_on_ssh2",
        "test_bench.py::test_skipped_on_pw",
        "test_bench.py::test_device_echoes_the_password",
        "test_bench.py::test_reconnects",
    ]
    assert rows == {
        "test_bench.py::test_uname": [".", ".", ".", ".", "."],
        "test_bench.py::test_fails_on_ssh2": [".", "F", ".", ".", "."],
        "test_bench.py::test_skipped_on_pw": [".", ".", "s", "-", "-"],
        "test_bench.py::test_device_echoes_the_password": ["-", "-", ".", ".", "-"],
        "test_bench.py::test_reconnects": [".", "-", "-", "-", "-"],
    }
    totals = {line.split()[0]: line.split()[1:] for line in lines if line.startswith("  ")}
    assert totals == {
        "failed": ["0", "1", "0", "0", "0"],
        "skipped": ["0", "0", "1", "0", "0"],
        "passed": ["4", "2", "3", "3", "2"],
    }


def test_one_log_file_per_host(bench: Run, password_user: tuple[str, str]) -> None:
    """Each host's log has its commands with timestamps, test, exit code and duration."""
    assert sorted(p.name for p in bench.logs.iterdir()) == sorted(f"{h}.log" for h in HOSTS)
    ssh2 = bench.log("ssh2")
    stamp = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"
    assert re.search(
        stamp + r" test_bench\.py::test_fails_on_ssh2\[ssh2\] \[default\] run echo checking \$\(\(6\*7\)\)"
        r" -> Success \(exit 0, \d+\.\d{3}s\)\n    \| checking 42\n",
        ssh2,
    ), ssh2
    assert re.search(stamp + r" test_bench\.py::test_fails_on_ssh2\[ssh2\] END failed", ssh2)
    assert "test_reconnects" not in ssh2  # ssh1's test is in ssh1's log only
    ssh1 = bench.log("ssh1")
    assert re.search(r"test_reconnects\[ssh1\] reconnect \(\d+\.\d{3}s\): session default", ssh1), ssh1
    # commands in the order they ran
    order = [ssh1.index(f"test_{name}[ssh1] START") for name in ("uname", "fails_on_ssh2", "reconnects")]
    assert order == sorted(order)
    for host in HOSTS:
        assert password_user[1] not in bench.log(host)


def test_console_logs_have_the_raw_line_masked(bench: Run, password_user: tuple[str, str]) -> None:
    """Console hosts' logs carry what the line said (the login, the shell's echo), masked."""
    tn, sl = bench.log("tn"), bench.log("sl")
    for log in (tn, sl):
        assert re.search(r"console\| .*login: ", log), log[:3000]
        assert " run uname -s -> Success (exit 0, " in log
    assert "console| the password is ********" in tn, tn
    assert "the password is ********" in bench.log("sshpw")
    assert "console|" not in bench.log("ssh1")


def test_junit_carries_each_transcript(bench: Run, password_user: tuple[str, str]) -> None:
    """Each host test case's system-out holds what its host ran during the test."""
    xml = (bench.folder / "out.xml").read_text()
    assert password_user[1] not in xml
    cases = {c.get("name"): c for c in ET.fromstring(xml).iter("testcase")}
    out = cases["test_fails_on_ssh2[ssh2]"].find("system-out")
    assert out is not None and out.text is not None
    assert "--- otto transcript ssh2 ---" in out.text
    assert "run echo checking $((6*7)) -> Success (exit 0," in out.text and "| checking 42" in out.text
    passing = cases["test_uname[tn]"].find("system-out")
    assert passing is not None and "run uname -s -> Success" in (passing.text or "")


def test_html_report_is_masked_and_self_contained(bench: Run, password_user: tuple[str, str]) -> None:
    """The page holds the lab, every host, the failure with its transcript; nothing it loads."""
    page = bench.report.read_text()
    assert password_user[1] not in page
    assert "bench-reports" in page and all(f"<td>{h}</td>" in page for h in HOSTS)
    assert "fails on purpose on ssh2" in page
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)
    assert "default-src 'none'" in page


def test_matrix_off_and_single_host(pytester: pytest.Pytester, ssh_lab: SshLab) -> None:
    """--otto-matrix=no: no matrix; a run on one host has none either (nothing to compare)."""
    lab = write_lab(pytester.path / "lab.toml", {"ssh1": ssh_lab[0], "ssh2": ssh_lab[1]})
    pytester.makepyfile(test_m="def test_a(host):\n    host.run_sync('true')\n")
    two = run_pytest(pytester.path, f"--lab={lab}")
    assert "otto test x host matrix" in two.stdout
    off = run_pytest(pytester.path, f"--lab={lab}", "--otto-matrix=no")
    assert "passed" in off.stdout and "otto test x host matrix" not in off.stdout
    one = run_pytest(pytester.path, f"--lab={lab}", "--host-pattern=ssh1")
    assert "1 passed" in one.stdout and "otto test x host matrix" not in one.stdout


HANGING_TEST = """
import pytest

@pytest.mark.timeout({timeout})
def test_hangs(host):
    host.run_sync("echo partial-output; sleep 60")

def test_after(host):
    host.run_sync("echo after")
"""


def test_command_killed_by_pytest_timeout_is_unfinished(pytester: pytest.Pytester, ssh_lab: SshLab) -> None:
    """pytest-timeout (signal method) stops a test mid-command: the command is in the report,
    the log and the HTML, marked unfinished, with its output so far; the host goes on."""
    pytest.importorskip("pytest_timeout")
    lab = write_lab(pytester.path / "lab.toml", {"ssh1": ssh_lab[0], "ssh2": ssh_lab[1]})
    pytester.makepyfile(test_t=HANGING_TEST.format(timeout=5))
    run = run_pytest(
        pytester.path,
        f"--lab={lab}",
        "--timeout-method=signal",
        "--otto-log-dir=logs",
        "--otto-report=report.html",
    )
    assert "2 failed, 2 passed" in run.stdout, run.stdout[-3000:]
    # the transcript section of the failure report
    assert "run 'echo partial-output; sleep 60' -> UNFINISHED (still running after " in run.stdout
    unfinished = "run echo partial-output; sleep 60 -> UNFINISHED (still running after "
    for host in ("ssh1", "ssh2"):
        log = run.log(host)
        assert unfinished in log and "    | partial-output" in log, log
        assert "test_after[" + host + "] [default] run echo after -> Success" in log
    page = run.report.read_text()
    assert "UNFINISHED" in page and "partial-output" in page


def test_ctrl_c_leaves_the_command_unfinished_in_log_and_report(tmp_path: Path, ssh_lab: SshLab) -> None:
    """Ctrl-C during a command: the matrix, the log and the HTML show it, unfinished, with its output."""
    lab = write_lab(tmp_path / "lab.toml", {"ssh1": ssh_lab[0], "ssh2": ssh_lab[1]})
    (tmp_path / "test_c.py").write_text(
        "def test_first(host):\n    host.run_sync('echo first')\n\n"
        "def test_hangs(host):\n"
        f"    host.run_sync('echo partial-output; touch {tmp_path}/started; sleep 60')\n"
    )
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pytest",
            *BASE_ARGS,
            f"--rootdir={tmp_path}",
            f"--lab={lab}",
            "-p",
            "no:xdist",
            "--otto-log-dir=logs",
            "--otto-report=report.html",
            "--otto-matrix=yes",
        ],
        cwd=tmp_path,
        env={**os.environ, "COLUMNS": "80"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not (tmp_path / "started").exists():  # the hanging command runs on ssh1
            assert proc.poll() is None and time.monotonic() < deadline, "the test never started its command"
            time.sleep(0.1)
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert "KeyboardInterrupt" in out, out[-3000:]
    lines = matrix_lines(out)
    rows = {line.split()[0]: line.split()[1:] for line in lines if line.startswith("test_c.py::")}
    assert rows["test_c.py::test_hangs"][0] == "!", lines
    log = (tmp_path / "logs" / "ssh1.log").read_text()
    assert f"test_hangs[ssh1] [default] run echo partial-output; touch {tmp_path}/started; sleep 60" in log
    assert "-> UNFINISHED (still running after" in log and "    | partial-output" in log, log
    assert "test_hangs[ssh1] END interrupted" in log
    page = (tmp_path / "report.html").read_text()
    assert "UNFINISHED" in page and "o-interrupted" in page


def test_reports_with_xdist(pytester: pytest.Pytester, ssh_lab: SshLab) -> None:
    """-n 2: what the workers' hosts ran reaches the controller's logs, matrix and HTML."""
    lab = write_lab(pytester.path / "lab.toml", {"ssh1": ssh_lab[0], "ssh2": ssh_lab[1]})
    pytester.makepyfile(
        test_x="def test_a(host):\n    host.run_sync('echo from-$((40+2))')\n\n"
        "def test_b(host):\n    assert host.id == 'ssh1'\n"
    )
    run = run_pytest(
        pytester.path,
        f"--lab={lab}",
        "-n",
        "2",
        "--otto-log-dir=logs",
        "--otto-report=r.html",
        "--junitxml=j.xml",
    )
    assert "1 failed, 3 passed" in run.stdout, run.stdout[-3000:]
    rows = {line.split()[0]: line.split()[1:] for line in matrix_lines(run.stdout) if "::" in line}
    assert rows == {"test_x.py::test_a": [".", "."], "test_x.py::test_b": [".", "F"]}
    for host in ("ssh1", "ssh2"):
        assert f"test_a[{host}] [default] run echo from-$((40+2)) -> Success" in run.log(host)
        assert "    | from-42" in run.log(host)
    assert "from-42" in (pytester.path / "r.html").read_text()
    cases = {c.get("name"): c for c in ET.parse(pytester.path / "j.xml").getroot().iter("testcase")}
    for host in ("ssh1", "ssh2"):
        (out,) = cases[f"test_a[{host}]"].iter("system-out")
        assert f"--- otto transcript {host} ---" in (out.text or "") and "| from-42" in (out.text or "")


def test_junit_with_pytest_own_system_out(pytester: pytest.Pytester, ssh_lab: SshLab) -> None:
    """junit_logging=system-out: one <system-out> per test case, captured output and transcript."""
    lab = write_lab(pytester.path / "lab.toml", {"ssh1": ssh_lab[0], "ssh2": ssh_lab[1]})
    pytester.makepyfile(
        test_j="def test_a(host):\n    print('printed-by-test')\n    host.run_sync('echo ran-$((1+1))')\n"
    )
    run = run_pytest(pytester.path, f"--lab={lab}", "--junitxml=j.xml", "-o", "junit_logging=system-out")
    assert "2 passed" in run.stdout, run.stdout[-3000:]
    for case in ET.parse(pytester.path / "j.xml").getroot().iter("testcase"):
        (out,) = case.iter("system-out")
        assert "printed-by-test" in (out.text or "") and "| ran-2" in (out.text or "")


def test_pytest_html_and_allure_get_the_host(pytester: pytest.Pytester, ssh_lab: SshLab) -> None:
    """pytest-html gets a Host column; Allure gets the transcript attached and the host as a label."""
    pytest.importorskip("pytest_html")
    pytest.importorskip("allure_pytest")
    lab = write_lab(pytester.path / "lab.toml", {"ssh1": ssh_lab[0], "ssh2": ssh_lab[1]})
    pytester.makepyfile(test_h="def test_a(host):\n    host.run_sync('echo hello-' + host.id)\n")
    run = run_pytest(pytester.path, f"--lab={lab}", "--html=ph.html", "--alluredir=allure")
    assert "2 passed" in run.stdout, run.stdout[-3000:]
    page = (pytester.path / "ph.html").read_text()
    # pytest-html 4 keeps its rows as escaped JSON in the page; the header is plain HTML
    assert "<th>Host</th>" in page
    rows = html.unescape(page)
    assert "<td>ssh1</td>" in rows and "<td>ssh2</td>" in rows
    assert "otto transcript ssh2 call" in rows and "run 'echo hello-' + host.id" not in rows
    assert "run &#x27;echo hello-ssh2&#x27; -&gt; Success" in rows  # the transcript, in each test's log
    results = [json.loads(p.read_text()) for p in (pytester.path / "allure").glob("*-result.json")]
    by_name = {r["name"]: r for r in results}
    for host in ("ssh1", "ssh2"):
        result = by_name[f"test_a[{host}]"]
        assert {"name": "otto_host", "value": host} in result["labels"]
        (attachment,) = [a for a in result["attachments"] if a["name"] == f"otto transcript {host}"]
        text = (pytester.path / "allure" / attachment["source"]).read_text()
        assert f"run echo hello-{host} -> Success" in text and f"| hello-{host}" in text


#: Where tests keep files for a person to look at after the run (CI uploads build/).
ARTIFACTS = Path(
    os.environ.get("OTTO_TEST_ARTIFACTS", Path(__file__).resolve().parent.parent / "build" / "test-artifacts")
)

#: What each matrix row of the bench run looks like in the browser (host order ssh1..sl).
BROWSER_MATRIX = [
    ["test_bench.py::test_uname", "passed", "passed", "passed", "passed", "passed"],
    ["test_bench.py::test_fails_on_ssh2", "passed", "failed", "passed", "passed", "passed"],
    ["test_bench.py::test_skipped_on_pw", "passed", "passed", "skipped", "-", "-"],
    ["test_bench.py::test_device_echoes_the_password", "-", "-", "passed", "passed", "-"],
    ["test_bench.py::test_reconnects", "passed", "-", "-", "-", "-"],
]


def test_html_report_in_a_real_browser(bench: Run) -> None:
    """Headless Chromium, network off, loads the report from disk: it fetches nothing, the
    matrix reads right and is coloured, a click on a cell reveals that test's transcript on
    that host, the timeline has a bar per test on each host and the reconnect marked."""
    from testlab.chromium import Browser, chromium_path

    if chromium_path() is None:
        pytest.skip("no chromium (scripts/install-system-deps installs the Debian package)")
    with Browser.start() as browser:
        page = browser.open(bench.report)
        assert page.requests() == [bench.report.resolve().as_uri()]  # no other file, no network
        rows = page.evaluate(
            "[...document.querySelectorAll('table.matrix tr')].map(r => [...r.cells].map(c => c.innerText))"
        )
        assert rows[0] == ["test", *HOSTS]
        assert rows[1:] == BROWSER_MATRIX
        colour = (
            "getComputedStyle(document.querySelector('td.cell[data-host=\"ssh2\"].o-failed')).backgroundColor"
        )
        assert page.evaluate(colour) == "rgb(198, 40, 40)"
        assert page.evaluate("document.getElementById('transcript-view').offsetHeight") == 0

        page.click('td.cell.o-failed[data-host="ssh2"]')
        shown = page.evaluate("document.getElementById('transcript-view').innerText")
        assert page.evaluate("document.getElementById('transcript-view').offsetHeight") > 50
        assert "test_bench.py::test_fails_on_ssh2[ssh2] on ssh2" in shown
        assert "fails on purpose on ssh2" in shown and "run echo checking $((6*7))" in shown
        assert "checking 42" in shown

        bars = page.evaluate(
            "Object.fromEntries([...document.querySelectorAll('.lane')].map(l => [l.dataset.host,"
            " [...l.querySelectorAll('.bar')].map(b => [b.className, b.getBoundingClientRect().width])]))"
        )
        assert {host: len(b) for host, b in bars.items()} == {
            "ssh1": 4,
            "ssh2": 3,
            "sshpw": 4,
            "tn": 3,
            "sl": 2,
        }
        assert all(width >= 3 for lane in bars.values() for _, width in lane)  # each bar is visible
        assert [c for c, _ in bars["ssh2"]].count("bar o-failed") == 1
        marks = page.evaluate(
            "[...document.querySelectorAll('.lane[data-host=\"ssh1\"] .mark')].map(m => m.dataset.kind)"
        )
        assert marks == ["reconnect"]

        page.click('.lane[data-host="tn"] .bar')  # a bar is a way in too
        assert "on tn" in page.evaluate("document.getElementById('transcript-view').innerText")
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shot = page.screenshot(ARTIFACTS / "report.png", full_page=True)
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000


def test_unreachable_host_in_matrix_log_and_page(pytester: pytest.Pytester, ssh_lab: SshLab) -> None:
    """A host that refuses: its column errors, its log says why, the other host's tests ran."""
    with socket.create_server(("127.0.0.1", 0)) as sock:
        closed = sock.getsockname()[1]  # nothing listens here once the socket is closed
    lab = write_lab(pytester.path / "lab.toml", {"ssh1": ssh_lab[0]})
    with lab.open("a") as f:
        f.write(f'\n[hosts.dead]\ntransport = "ssh"\naddress = "127.0.0.1"\nport = {closed}\nuser = "root"\n')
    pytester.makepyfile(test_d="def test_a(host):\n    host.run_sync('true')\n")
    run = run_pytest(pytester.path, f"--lab={lab}", "--otto-log-dir=logs", "--otto-report=r.html")
    assert "1 passed, 1 error" in run.stdout, run.stdout[-3000:]
    rows = {line.split()[0]: line.split()[1:] for line in matrix_lines(run.stdout) if "::" in line}
    assert rows == {"test_d.py::test_a": [".", "E"]}
    dead = run.log("dead")
    assert re.search(r"\(between tests\) connect-failed \(\d+\.\d{3}s\): session default", dead), dead
    assert "test_d.py::test_a[dead] END error" in dead
    page = (pytester.path / "r.html").read_text()
    assert "host &#x27;dead&#x27; is unreachable: connection to root@127.0.0.1:" in page


def test_a_failure_quoting_a_secret_is_masked_in_page_and_logs(
    pytester: pytest.Pytester, ssh_lab: SshLab, password_user: tuple[str, str]
) -> None:
    """An assertion that quotes a device's output holding the lab password: the HTML page
    and the host logs show the failure masked (the terminal and JUnit are issue 20.2's)."""
    lab = write_lab(pytester.path / "lab.toml", {"ssh1": ssh_lab[0], "sshpw": ssh_lab[2]})
    pytester.makepyfile(
        test_s="""
        import os, pytest

        @pytest.mark.otto_hosts(pattern="sshpw")
        def test_s(host):
            out = host.run_sync("echo $OTTO_SECRET_VIA_ENV " + os.environ["OTTO_REPORTS_PW"]).only.output
            assert out == "nothing", "device said: " + out
        """
    )
    run = run_pytest(
        pytester.path,
        f"--lab={lab}",
        "--otto-log-dir=logs",
        "--otto-report=r.html",
        env={PW_ENV: password_user[1]},
    )
    assert "1 failed" in run.stdout, run.stdout[-3000:]
    page = html.unescape((pytester.path / "r.html").read_text())
    assert "AssertionError: device said: ********" in page and password_user[1] not in page
    assert password_user[1] not in run.log("sshpw")
