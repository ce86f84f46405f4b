"""Whole-process measurements: a pytest run, or a helper script, timed from outside.

Each run gets a fresh temp directory holding its test file and a ``pytest.ini``,
outside the repository, so neither the repository's conftest nor its settings
take part. Wall time is measured around the process; peak memory is the child
program's own ``VmHWM`` (see `benchmarks.peak`).

Every pytest process runs with plugin autoloading off and loads, with ``-p``,
exactly the plugins its tool needs: pytest-otto and pytest-asyncio (its
dependency) on one side, pytest-testinfra on the other (and pytest-xdist for
``-n``), pytest-asyncio for plain pytest. The dev machine also has hypothesis,
pytest-benchmark, pytest-xdist and both tools installed, which would add about
0.5 s of imports to every start of either tool: a cost of this machine, not of
a user who installed one of them. Both sides get the same treatment.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "ProcessRun",
    "run_process",
    "run_pytest",
    "plain_pytest_argv",
    "plain_pytest_project",
    "bare_pytest_argv",
    "empty_pytest_project",
    "pytest_otto_project",
    "testinfra_project",
    "otto_pytest_argv",
    "testinfra_argv",
]

REPO = Path(__file__).resolve().parent.parent

#: No settings: what a new user has (pytest-asyncio in its default strict mode).
PYTEST_INI = """[pytest]
"""

#: pytest's own switch: load only the plugins named with ``-p`` (see the module docstring).
PYTEST_ENV = {"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}

OTTO_ECHO_TEST = """
async def test_echo(host):
    result = await host.run("echo hi")
    assert result.only.output == "hi"
"""

TESTINFRA_ECHO_TEST = """
def test_echo(host):
    result = host.run("echo hi")
    assert result.rc == 0 and result.stdout.strip() == "hi"
"""

OTTO_NODE_TEST = """
async def test_true_{i}(host):
    assert (await host.run("true")).status.is_ok
"""

# Issue 22.1's baseline for the nodes above: the same commands, in the same order, run
# by one test on the same connected hosts.
OTTO_ONE_TEST = """
async def test_all_commands(hosts):
    for _ in range({tests}):
        for host in hosts:
            assert (await host.run("true")).status.is_ok
"""

# The same event loop as pytest-otto's host nodes get (one for the session), so the
# difference between the two is what pytest-otto adds, not a choice of loop scope.
PLAIN_NODES_HEADER = """
import asyncio

import pytest

pytestmark = pytest.mark.asyncio(loop_scope="session")

IDS = [f"ssh{{k + 1}}" for k in range({hosts})]
"""

PLAIN_NODE_TEST = """
@pytest.mark.parametrize("host_id", IDS)
async def test_nothing_{i}(host_id):
    await asyncio.sleep(0)
"""


@dataclass
class ProcessRun:
    """What one child process cost: wall seconds, peak RSS (KiB, 0 if unknown), exit code,
    output, and the CPU seconds it used (user + system, all its threads)."""

    wall: float
    max_rss_kib: int
    returncode: int
    output: str
    #: Unlike the wall time, barely stretched by other processes on a loaded machine.
    cpu: float = 0.0

    def tail(self, lines: int = 3) -> str:
        """The last non-empty output lines, for error messages."""
        return " | ".join([ln for ln in self.output.strip().splitlines() if ln.strip()][-lines:])

    def json_tail(self) -> dict:
        """The last line of stdout parsed as JSON (helper scripts report that way)."""
        for line in reversed(self.output.strip().splitlines()):
            if line.startswith("{"):
                return json.loads(line)
        raise ValueError(f"no JSON result in output:\n{self.output[-2000:]}")


def run_process(
    argv: list[str], cwd: Path | None = None, timeout: float = 300.0, env: dict[str, str] | None = None
) -> ProcessRun:
    """Run ``argv`` to completion (bounded); return its wall time, peak RSS and output.

    A ``python -m MODULE ...`` command runs under `benchmarks.peak`, which records
    the program's own peak RSS (the rusage of a child would include this process's).
    ``env`` adds variables to the child's environment.
    """
    peak_file = None
    if len(argv) > 2 and argv[0] == sys.executable and argv[1] == "-m":
        fd, peak_file = tempfile.mkstemp(prefix="otto-bench-peak-")
        os.close(fd)
        argv = [argv[0], "-m", "benchmarks.peak", peak_file, *argv[2:]]
    env = {**os.environ, **(env or {})}
    env["PYTHONPATH"] = str(REPO) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    # The dev VM sets PYTHONDONTWRITEBYTECODE, so every pytest start would recompile
    # pytest, its plugins and hypothesis (~1.5 s, imported by its plugin at exit):
    # a cost of this machine, not of either tool. Children use bytecode caches.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.pop("PYTEST_ADDOPTS", None)
    env.pop("PYTEST_XDIST_WORKER", None)
    with tempfile.TemporaryFile() as out:
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
        deadline = t0 + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.002)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        text = out.read().decode("utf-8", "replace")
    max_rss = 0
    if peak_file is not None:
        try:
            max_rss = int(Path(peak_file).read_text() or 0)
        except (OSError, ValueError):
            max_rss = 0
        os.unlink(peak_file)
    return ProcessRun(wall, max_rss, proc.returncode, text, usage.ru_utime + usage.ru_stime)


def run_pytest(argv: list[str], cwd: Path, timeout: float = 300.0) -> ProcessRun:
    """`run_process` for a pytest command line: plugin autoloading off (``PYTEST_ENV``)."""
    return run_process(argv, cwd=cwd, timeout=timeout, env=PYTEST_ENV)


def _project(files: dict[str, str]) -> Path:
    path = Path(tempfile.mkdtemp(prefix="otto-bench-proj-"))
    (path / "pytest.ini").write_text(PYTEST_INI)
    for name, text in files.items():
        (path / name).write_text(text)
    return path


def pytest_otto_project(tests: int = 0) -> Path:
    """A temp project: one ``echo hi`` test (``tests=0``), or ``tests`` ``run("true")`` tests."""
    if not tests:
        return _project({"test_echo.py": OTTO_ECHO_TEST})
    return _project({"test_nodes.py": "".join(OTTO_NODE_TEST.format(i=i) for i in range(tests))})


def otto_one_test_project(tests: int) -> Path:
    """One test running ``tests`` rounds of ``run("true")`` on every host (`OTTO_ONE_TEST`)."""
    return _project({"test_one.py": OTTO_ONE_TEST.format(tests=tests)})


def plain_pytest_project(tests: int, hosts: int) -> Path:
    """``tests`` async tests parametrized over ``hosts`` ids doing nothing: pytest's own cost."""
    body = PLAIN_NODES_HEADER.format(hosts=hosts) + "".join(PLAIN_NODE_TEST.format(i=i) for i in range(tests))
    return _project({"test_plain.py": body})


EMPTY_NODES_HEADER = """
import pytest

IDS = [f"ssh{{k + 1}}" for k in range({hosts})]
"""

EMPTY_NODE_TEST = """
@pytest.mark.parametrize("host_id", IDS)
def test_empty_{i}(host_id):
    pass
"""


def empty_pytest_project(tests: int, hosts: int) -> Path:
    """``tests`` empty sync tests parametrized over ``hosts`` ids: the least a pytest node costs."""
    body = EMPTY_NODES_HEADER.format(hosts=hosts) + "".join(EMPTY_NODE_TEST.format(i=i) for i in range(tests))
    return _project({"test_empty.py": body})


def bare_pytest_argv() -> list[str]:
    """pytest with no plugin but its own (run it with `run_pytest`)."""
    return list(COMMON_PYTEST)


def plain_pytest_argv() -> list[str]:
    """Plain ``pytest`` with pytest-asyncio only (run it with `run_pytest`)."""
    return [*COMMON_PYTEST, "-p", "pytest_asyncio.plugin"]


def testinfra_project() -> Path:
    """A temp project with the same one-line test written for pytest-testinfra."""
    return _project({"test_echo.py": TESTINFRA_ECHO_TEST})


def remove_project(path: Path) -> None:
    """Delete a temp project."""
    shutil.rmtree(path, ignore_errors=True)


COMMON_PYTEST = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]


def otto_pytest_argv(lab_toml: Path, extra: list[str] | None = None) -> list[str]:
    """``pytest --lab=lab.toml`` with pytest-otto and pytest-asyncio (run it with `run_pytest`).

    ``--lab=PATH`` in one argument: pytest looks for its rootdir and ini file from the
    path arguments on the command line before it knows plugin options, so with
    ``--lab PATH`` it takes the lab file for a test path and ignores the project's ini.
    """
    return [
        *COMMON_PYTEST,
        "-p",
        "pytest_otto.plugin",
        "-p",
        "pytest_asyncio.plugin",
        f"--lab={lab_toml}",
        *(extra or []),
    ]


def testinfra_argv(host_ids: list[str], ssh_config: Path, extra: list[str] | None = None) -> list[str]:
    """``pytest --hosts=paramiko://...`` with pytest-testinfra (run it with `run_pytest`).

    With ``-n`` in ``extra``, pytest-xdist is loaded too.
    """
    hosts = ",".join(f"paramiko://{host_id}" for host_id in host_ids)
    xdist = ["-p", "xdist.plugin"] if extra and "-n" in extra else []
    return [
        *COMMON_PYTEST,
        "-p",
        "testinfra.plugin",
        *xdist,
        f"--hosts={hosts}",
        f"--ssh-config={ssh_config}",
        *(extra or []),
    ]
