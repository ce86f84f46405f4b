"""The pytest plugin, run for real: pytester starts pytest in a subprocess on test files.

Subprocess runs (not in-process) because the otto loop thread and pytest-xdist
workers belong to a process of their own. The inner runs have no ini file unless a
test writes one, so pytest-asyncio is in its default strict mode: exactly what a new
user has.
"""

from __future__ import annotations

import re
import shutil
import socket
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest
import tomli_w

from testlab._util import accept_forever, stop_listening
from testlab.labfile import lab_dict
from testlab.serial import SerialConsole
from testlab.sshd import SshLab
from testlab.telnetd import TelnetServer

#: Options of every inner run: no cache dir, and none of the slow-loading plugins this
#: machine has (they cost a second per run); `test_example_runs_out_of_the_box` keeps them.
BASE_ARGS = (
    "-p",
    "no:cacheprovider",
    "-p",
    "no:hypothesispytest",
    "-p",
    "no:benchmark",
    "-p",
    "no:pytest11.testinfra",
)

ROOT = Path(__file__).resolve().parent.parent

#: Options of an inner run that loads every installed plugin, as a user's run does.
ALL_PLUGINS = ("-p", "no:cacheprovider")


def run(pytester: pytest.Pytester, *args: str, base: tuple[str, ...] = BASE_ARGS) -> pytest.RunResult:
    """Run pytest on the pytester directory in a subprocess, bounded."""
    return pytester.runpytest_subprocess(*base, *args, timeout=120)


SYNC_ASYNC = """
import asyncio

def test_sync(host):
    assert host.run_sync("echo sync-$((1+1))").only.output == "sync-2"

async def test_async(host):
    asyncio.get_running_loop()  # really runs on an event loop
    assert (await host.run("echo async-$((2+2))")).only.output == "async-4"

def test_plain():
    pass
"""


def test_no_lab_runs_on_local_host_sync_and_async(pytester: pytest.Pytester) -> None:
    """B29 with no --lab: one node per test using host, id [local]; async needs no decorator."""
    pytester.makepyfile(test_x=SYNC_ASYNC)
    result = run(pytester, "-v")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(
        [
            "otto lab: local (no --lab*the local machine)",
            "otto hosts (1 of 1): local",
            "*test_x.py::test_sync[[]local[]] PASSED*",
            "*test_x.py::test_async[[]local[]] PASSED*",
            "*test_x.py::test_plain PASSED*",
        ]
    )


def test_user_asyncio_configuration_is_respected(pytester: pytest.Pytester) -> None:
    """Users who configure pytest-asyncio keep their mode and their marker's loop scope."""
    pytester.makeini("[pytest]\nasyncio_mode = auto\n")
    pytester.makepyfile(
        test_scoped="""
        import asyncio
        import pytest

        pytestmark = pytest.mark.asyncio(loop_scope="module")
        loops = []

        async def test_first(host):
            loops.append(asyncio.get_running_loop())
            assert (await host.run("echo one")).only.output == "one"

        async def test_second(host):
            loops.append(asyncio.get_running_loop())
            assert loops[0] is loops[1], "the module loop scope was overridden"
        """
    )
    run(pytester).assert_outcomes(passed=2)


def test_shell_opens_once_per_run(pytester: pytest.Pytester) -> None:
    """The host's shell lives for the session: state set by one test is seen by the next."""
    pytester.makepyfile(
        test_a="""
        def test_set(host):
            host.run_sync("export OTTO_SEEN=$$")
        """,
        test_b="""
        async def test_seen(host):
            result = await host.run('test "$OTTO_SEEN" = "$$" && echo same-shell')
            assert result.only.output == "same-shell"
        """,
    )
    run(pytester).assert_outcomes(passed=2)


FAILING = """
def test_fails(host, local_host):
    host.run_sync("echo transcript-$((40+2))")
    assert False, "boom"

def test_passes(host):
    host.run_sync("printf 'passed-output'")
"""


def test_transcript_in_failure_report_and_with_rA(pytester: pytest.Pytester) -> None:
    """Each host's commands (command, status, exit code, duration, output) are a report section."""
    pytester.makepyfile(test_t=FAILING)
    result = run(pytester, "-rA")
    result.assert_outcomes(passed=1, failed=1)
    out = result.stdout.str()
    failures = out[out.index("= FAILURES =") : out.index("= PASSES =")]
    assert "otto transcript local call" in failures
    assert "[local:default] run 'echo transcript-$((40+2))' -> Success (exit 0," in failures
    assert "transcript-42" in failures
    passes = out[out.index("= PASSES =") :]
    assert "[local:default] run \"printf 'passed-output'\" -> Success (exit 0," in passes
    assert "passed-output" in passes
    # Without -rA a passing test shows nothing.
    quiet = run(pytester).stdout.str()
    assert "passed-output" not in quiet and "transcript-42" in quiet


USED_HOSTS = """
import pytest
from pytest_otto import LocalHost

@pytest.fixture
def bracketed(host):
    host.run_sync("echo setup-$((1+1))-" + host.id)
    yield
    host.run_sync("echo teardown-$((2+1))-" + host.id)

def test_one_host(host, bracketed):
    host.run_sync("echo call-on-" + host.id)

def test_through_lab(lab):
    lab["gamma"].run_sync("echo via-lab-gamma")
    lab["alpha"].run_sync("echo via-lab-alpha")
    made_here = LocalHost("adhoc")
    try:
        made_here.run_sync("echo made-$((3*3))")
    finally:
        made_here.close_sync()

def test_quiet(host):
    pass
"""


def passes_by_test(out: str) -> dict[str, str]:
    """The ``-rA`` PASSES block of pytest's output, split per test: {test name: its sections}."""
    block = out[out.index("= PASSES =") :].split("short test summary info")[0]
    parts = re.split(r"^_{3,} (\S+) _{3,}$", block, flags=re.M)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def test_transcript_sections_are_the_hosts_the_test_used(pytester: pytest.Pytester) -> None:
    """Report sections: each host the test used (host, lab, one made in the test), per phase, in lab
    order; the other hosts of the lab never appear, and a test that ran nothing has no section."""
    lab = write_lab(pytester)
    pytester.makepyfile(test_used=USED_HOSTS)
    result = run(pytester, "--lab", str(lab), "-rA")
    result.assert_outcomes(passed=7)
    tests = passes_by_test(result.stdout.str())
    for host_id in ("alpha", "beta", "gamma"):
        sections = re.findall(r"otto transcript (\S+) (\S+)", tests[f"test_one_host[{host_id}]"])
        assert sections == [(host_id, "setup"), (host_id, "call"), (host_id, "teardown")]
        text = tests[f"test_one_host[{host_id}]"]
        assert f"setup-2-{host_id}" in text and f"call-on-{host_id}" in text
        assert f"teardown-3-{host_id}" in text
        assert f"test_quiet[{host_id}]" not in tests  # nothing ran: no section, so no block
    lab_test = tests["test_through_lab"]
    assert re.findall(r"otto transcript (\S+) (\S+)", lab_test) == [
        ("alpha", "call"),
        ("gamma", "call"),
        ("adhoc", "call"),
    ]
    assert "via-lab-alpha" in lab_test and "via-lab-gamma" in lab_test and "made-9" in lab_test


LOOPS = """
import asyncio
import pytest
import pytest_asyncio

LOOPS = {}

@pytest_asyncio.fixture
async def test_loop_thing():
    yield asyncio.get_running_loop()

async def test_a(host):
    LOOPS["a"] = asyncio.get_running_loop()
    assert (await host.run("echo a")).only.output == "a"

async def test_b(host, lab):
    LOOPS["b"] = asyncio.get_running_loop()

async def test_not_otto():
    LOOPS["plain"] = asyncio.get_running_loop()

async def test_with_async_fixture(host, test_loop_thing):
    # A fixture on another loop than the test's would fail here.
    assert test_loop_thing is asyncio.get_running_loop()
    LOOPS["fixture"] = test_loop_thing

def test_report():
    a = LOOPS["a"]
    print("SHARED", LOOPS["b"] is a, "PLAIN-OWN", LOOPS["plain"] is not a,
          "FIXTURE-OWN", LOOPS["fixture"] is not a)
"""


def test_host_tests_share_the_session_loop_unless_configured(pytester: pytest.Pytester) -> None:
    """Async host tests the plugin marked share one loop; other async tests, tests with an async
    fixture of a narrower loop scope, and users who chose a test loop scope keep a loop per test."""
    pytester.makepyfile(test_loops=LOOPS)
    result = run(pytester, "-s")
    result.assert_outcomes(passed=5)
    result.stdout.fnmatch_lines(["*SHARED True PLAIN-OWN True FIXTURE-OWN True*"])
    by_option = run(pytester, "-s", "-o", "asyncio_default_test_loop_scope=function")
    by_option.assert_outcomes(passed=5)
    by_option.stdout.fnmatch_lines(["*SHARED False PLAIN-OWN True FIXTURE-OWN True*"])
    pytester.makeini("[pytest]\nasyncio_default_test_loop_scope = function\n")
    by_ini = run(pytester, "-s")
    by_ini.assert_outcomes(passed=5)
    by_ini.stdout.fnmatch_lines(["*SHARED False PLAIN-OWN True FIXTURE-OWN True*"])


OTTO_LOOP_RUNNER = """
import asyncio
import pytest
from pytest_otto import loop

async def test_on_otto_loop(host):
    assert asyncio.get_running_loop() is loop.get_loop()
    assert (await host.run("echo native")).only.output == "native"

@pytest.mark.asyncio
async def test_user_marked(host):
    assert asyncio.get_running_loop() is not loop.get_loop()
    assert (await host.run("echo marked")).only.output == "marked"

async def test_blocking_twin_is_refused(host):
    with pytest.raises(RuntimeError, match="await the async method"):
        host.run_sync("true")

async def test_skip_inside(host):
    pytest.skip("skipped from the otto loop")

async def test_fails_with_its_own_line(host):
    result = await host.run("echo seen")
    assert result.only.output == "unseen"
"""


def test_async_host_tests_run_on_the_otto_loop(pytester: pytest.Pytester) -> None:
    """Unmarked async host tests run on the otto loop itself: no hop per await. Skips and
    failures report as usual (with the test's own line); a user's asyncio marker keeps
    pytest-asyncio; a blocking twin inside is refused with a message instead of a deadlock;
    with pytest-asyncio disabled the host tests still run."""
    pytester.makepyfile(test_runner=OTTO_LOOP_RUNNER)
    result = run(pytester, "-rs")
    result.assert_outcomes(passed=3, skipped=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            '>*assert result.only.output == "unseen"',
            "*assert 'seen' == 'unseen'*",
            "test_runner.py:*: AssertionError",
            "*skipped from the otto loop*",
        ]
    )
    without = run(pytester, "-p", "no:asyncio", "-k", "not user_marked")
    without.assert_outcomes(passed=2, skipped=1, failed=1)


def test_async_tests_without_autoload(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """Plugins named by module (autoload off, ``-p pytest_asyncio.plugin``): async tests still run."""
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    pytester.makepyfile(test_x=SYNC_ASYNC)
    result = run(pytester, "-v", "-p", "pytest_otto.plugin", "-p", "pytest_asyncio.plugin")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["*test_async[[]local[]] PASSED*"])


def test_junit_xml_has_lab_and_host_properties(pytester: pytest.Pytester) -> None:
    """Each test case of a host test carries the lab's name (otto_lab) and its host id (otto_host)."""
    pytester.makepyfile(test_j=SYNC_ASYNC)
    run(pytester, "--junitxml=out.xml").assert_outcomes(passed=3)
    cases = {c.get("name"): c for c in ET.parse(pytester.path / "out.xml").getroot().iter("testcase")}
    assert set(cases) == {"test_sync[local]", "test_async[local]", "test_plain"}
    for name in ("test_sync[local]", "test_async[local]"):
        props = [(p.get("name"), p.get("value")) for p in cases[name].iter("property")]
        assert props == [("otto_lab", "local"), ("otto_host", "local")]
    assert list(cases["test_plain"].iter("property")) == []


def test_an_empty_lab_is_a_usage_error(pytester: pytest.Pytester) -> None:
    """A bench file that lost its hosts must not pass a CI job with every host test skipped."""
    lab = pytester.path / "empty.toml"
    lab.write_text('[lab]\nname = "bare"\n')
    pytester.makepyfile(test_e=SYNC_ASYNC)
    result = run(pytester, f"--lab={lab}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [f"ERROR: pytest-otto: lab 'bare' ({lab}) has no hosts; add a [[]hosts.<id>] table*"]
    )


def test_marker_filters_nodes_at_collection(pytester: pytest.Pytester) -> None:
    """otto_hosts(pattern=...) keeps matching hosts; a test no host matches is skipped with why."""
    pytester.makepyfile(
        test_m="""
        import pytest

        @pytest.mark.otto_hosts(pattern="^loc")
        def test_kept(host):
            assert host.id == "local"

        @pytest.mark.otto_hosts(pattern="router")
        def test_dropped(host):
            raise AssertionError("must not run")

        @pytest.mark.otto_hosts(tags=["dut"])
        def test_dropped_by_tag(hosts):
            raise AssertionError("must not run")
        """
    )
    result = run(pytester, "-rs", "-v")
    result.assert_outcomes(passed=1, skipped=2)
    result.stdout.fnmatch_lines(["*test_kept[[]local[]] PASSED*", "*test_dropped[[]no host[]] SKIPPED*"])
    out = result.stdout.str()
    assert "no selected host of lab 'local' matches otto_hosts(pattern='router', tags=None)" in out
    assert "no selected host of lab 'local' matches otto_hosts(pattern=None, tags=['dut'])" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("--host-pattern", "x["),
            "*--host-pattern 'x[[]' is not a valid regular expression*hosts of*: local",
        ),
        (("--host-pattern", "nothing"), "*--host-pattern 'nothing' selects no host; the hosts of*: local"),
        (
            ("--lab", "missing.toml"),
            "*missing.toml: cannot read the lab file: No such file*(lab file given by --lab)",
        ),
    ],
)
def test_usage_errors_exit_4_before_tests(
    pytester: pytest.Pytester, args: tuple[str, ...], message: str
) -> None:
    """B28: mistakes in the options stop the run with exit code 4 before any test runs."""
    pytester.makepyfile(test_u="def test_u(host):\n    open('ran', 'w').close()\n")
    result = run(pytester, *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])
    assert not (pytester.path / "ran").exists()


def test_xdist_runs_local_host(pytester: pytest.Pytester) -> None:
    """-n 2 without --dist: pytest-otto's scheduler, every host test passes on its worker."""
    pytester.makepyfile(test_x=SYNC_ASYNC)
    result = run(pytester, "-n", "2")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(
        [
            "otto xdist: pytest-otto schedules the tests of one host on one worker (checked at the end)",
            "otto xdist: each of 1 host group(s) ran on one worker (1 worker(s) used)",
        ]
    )


def test_example_runs_out_of_the_box(pytester: pytest.Pytester) -> None:
    """examples/test_demo.py passes on the local host with no lab and no configuration.

    Every installed plugin is loaded here: testinfra's ``host`` fixture must not win.
    """
    shutil.copy(ROOT / "examples" / "test_demo.py", pytester.path / "test_demo.py")
    result = run(pytester, "-v", base=("-p", "no:cacheprovider"))
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["*test_kernel_is_linux[[]local[]] PASSED*"])


LOCAL_LAB = """
[lab]
name = "bench-local"

[hosts.alpha]
transport = "local"
tags = ["linux", "dut"]

[hosts.beta]
transport = "local"
tags = ["linux"]

[hosts.gamma]
transport = "local"
"""

HOST_IDS = """
import pytest

def test_id(host, request):
    assert request.node.name == f"test_id[{host.id}]"
    assert host.run_sync("echo $((6*7))").only.output == "42"

@pytest.mark.otto_hosts(tags=["linux"])
async def test_linux(host):
    assert "linux" in host.tags

@pytest.mark.otto_hosts(pattern="a$", tags=["dut"])
def test_dut(host):
    assert host.id == "alpha"

def test_many(hosts, lab):
    assert [h.id for h in hosts] == [h.id for h in lab.hosts] == ["alpha", "beta", "gamma"]
    assert [h.id for h in lab.select(tags=["linux"])] == ["alpha", "beta"]
"""


def write_lab(pytester: pytest.Pytester, text: str = LOCAL_LAB, name: str = "lab.toml") -> Path:
    """Write a lab file into the pytester directory."""
    path = pytester.path / name
    path.write_text(text)
    return path


def test_lab_file_nodes_per_host_and_markers(pytester: pytest.Pytester) -> None:
    """B29: one node per selected host, test_name[host_id]; markers drop nodes; one node for hosts."""
    lab = write_lab(pytester)
    pytester.makepyfile(test_h=HOST_IDS)
    result = run(pytester, "--lab", str(lab), "-v")
    result.assert_outcomes(passed=3 + 2 + 1 + 1)
    result.stdout.fnmatch_lines(
        [f"otto lab: bench-local ({lab}, from --lab)", "otto hosts (3 of 3): alpha, beta, gamma"]
    )
    out = result.stdout.str()
    for node in (
        "test_id[alpha]",
        "test_id[beta]",
        "test_id[gamma]",
        "test_linux[alpha]",
        "test_linux[beta]",
    ):
        assert f"test_h.py::{node} PASSED" in out
    assert "test_linux[gamma]" not in out and "test_dut[beta]" not in out
    assert "test_h.py::test_many PASSED" in out


def test_k_and_host_pattern_select_hosts(pytester: pytest.Pytester) -> None:
    """-k sees host ids in node ids; --host-pattern (re.search) selects hosts for every test."""
    lab = write_lab(pytester)
    pytester.makepyfile(test_h=HOST_IDS)
    by_k = run(pytester, "--lab", str(lab), "-v", "-k", "beta")
    by_k.assert_outcomes(passed=2, deselected=5)
    by_k.stdout.fnmatch_lines(["*test_id[[]beta[]] PASSED*", "*test_linux[[]beta[]] PASSED*"])
    by_pattern = run(pytester, "--lab", str(lab), "-v", "--host-pattern", "^(alpha|gamma)$")
    # test_dut[alpha], test_id x2, test_linux[alpha]; test_many gets the 2 selected hosts and fails its check.
    by_pattern.assert_outcomes(passed=4, failed=1)
    by_pattern.stdout.fnmatch_lines(["otto hosts (2 of 3, --host-pattern '^(alpha|gamma)$'): alpha, gamma"])
    assert "[beta]" not in by_pattern.stdout.str()


def test_no_host_selected_lists_lab_hosts(pytester: pytest.Pytester) -> None:
    """B28 with a lab file: the usage error names the lab file and lists its hosts."""
    lab = write_lab(pytester)
    pytester.makepyfile(test_h=HOST_IDS)
    result = run(pytester, "--lab", str(lab), "--host-pattern", "router")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            f"*--host-pattern 'router' selects no host; the hosts of lab 'bench-local' ({lab}) are: "
            "alpha, beta, gamma"
        ]
    )


def test_broken_lab_file_is_a_usage_error(pytester: pytest.Pytester) -> None:
    """A mistake in the lab file stops the run (exit 4) naming the file, the host and the key."""
    lab = write_lab(pytester, LOCAL_LAB.replace('tags = ["linux"]', 'tagz = ["linux"]'))
    pytester.makepyfile(test_u="def test_u(host):\n    open('ran', 'w').close()\n")
    result = run(pytester, "--lab", str(lab))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*{lab}*host 'beta'*'tagz'*"])
    assert not (pytester.path / "ran").exists()


def test_lab_precedence_option_env_ini(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """--lab wins over $OTTO_LAB, which wins over the ini option otto_lab (relative to the ini file)."""
    for name in ("ini", "env", "opt"):
        write_lab(
            pytester, f'[lab]\nname = "{name}-lab"\n[hosts.{name}host]\ntransport = "local"\n', f"{name}.toml"
        )
    pytester.makeini("[pytest]\notto_lab = ini.toml\n")
    pytester.makepyfile(test_p="def test_p(host, lab):\n    print('RAN-ON', lab.name, host.id)\n")
    monkeypatch.delenv("OTTO_LAB", raising=False)
    run(pytester, "-s").stdout.fnmatch_lines(["*RAN-ON ini-lab inihost*"])
    monkeypatch.setenv("OTTO_LAB", str(pytester.path / "env.toml"))
    run(pytester, "-s").stdout.fnmatch_lines(
        ["otto lab: env-lab (*env.toml, from $OTTO_LAB)", "*RAN-ON env-lab envhost*"]
    )
    run(pytester, "-s", "--lab", "opt.toml").stdout.fnmatch_lines(["*RAN-ON opt-lab opthost*"])


def test_lab_outside_the_project_as_two_arguments_warns(
    pytester: pytest.Pytester, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """``--lab PATH`` outside the project moves pytest's ini search: say so; ``--lab=PATH`` is fine."""
    lab = tmp_path_factory.mktemp("labs") / "lab.toml"
    lab.write_text(LOCAL_LAB)
    pytester.makeini("[pytest]\npython_files = check_*.py\n")  # only this ini makes the test visible
    pytester.makepyfile(check_x="def test_x(host):\n    pass\n")
    two_args = run(pytester, "--lab", str(lab))
    two_args.stdout.fnmatch_lines(
        [
            f"*pytest-otto: with '--lab {lab}' pytest took the lab file*"
            f"so {pytester.path / 'tox.ini'} was not read*"
        ]
    )
    assert "passed" not in two_args.stdout.str()  # the project's ini really was not read
    # with warnings as errors it is a usage error, not a traceback
    as_error = run(pytester, "-W", "error::pytest.PytestConfigWarning", "--lab", str(lab))
    assert as_error.ret == pytest.ExitCode.USAGE_ERROR
    as_error.stderr.fnmatch_lines([f"ERROR: pytest-otto: with '--lab {lab}' pytest took the lab file*"])
    one_arg = run(pytester, f"--lab={lab}")
    one_arg.assert_outcomes(passed=3)
    assert "pytest-otto: with '--lab" not in one_arg.stdout.str()
    # a test path argument keeps pytest's search in the project: the ini is read, no warning
    with_test_path = run(pytester, "--lab", str(lab), "check_x.py")
    with_test_path.assert_outcomes(passed=3)
    assert "pytest-otto: with '--lab" not in with_test_path.stdout.str()


def write_where_tests(pytester: pytest.Pytester, files: int) -> None:
    """``files`` test files whose host test logs "host worker shell-pid" to where.log."""
    pytester.makepyfile(
        **{
            f"test_w{i}": """
            import os

            def test_where(host):
                shell = host.run_sync("echo $$").only.output
                with open("where.log", "a") as f:
                    f.write(f"{host.id} {os.environ['PYTEST_XDIST_WORKER']} {shell}\\n")
            """
            for i in range(files)
        }
    )


def assert_one_worker_and_shell_per_host(pytester: pytest.Pytester, runs: dict[str, int]) -> None:
    """Each host ran its ``runs[host]`` tests on one worker, in one shell; hosts on different workers."""
    rows = [line.split() for line in (pytester.path / "where.log").read_text().splitlines()]
    assert {host: sum(row[0] == host for row in rows) for host in runs} == runs, rows
    placement = {host: {(worker, shell) for h, worker, shell in rows if h == host} for host in runs}
    assert all(len(places) == 1 for places in placement.values()), placement
    assert len({worker for places in placement.values() for worker, _ in places}) == len(runs), placement


def test_xdist_keeps_each_host_on_one_worker(pytester: pytest.Pytester) -> None:
    """-n 2: a host's nodes all run on one worker in one shell; the two hosts use both workers."""
    lab = write_lab(pytester, LOCAL_LAB.replace('[hosts.gamma]\ntransport = "local"\n', ""))
    write_where_tests(pytester, 4)
    result = run(pytester, "--lab", str(lab), "-n", "2")
    result.assert_outcomes(passed=8)
    assert_one_worker_and_shell_per_host(pytester, {"alpha": 4, "beta": 4})


# -- real sshd hosts ------------------------------------------------------------------------

PW_ENV = "OTTO_PLUGIN_TEST_PASSWORD"


class SilentServer:
    """A TCP listener that accepts and never answers: each connection attempt is counted."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.accepted: list[socket.socket] = []
        self.thread = accept_forever(self.sock, self.accepted.append)

    def close(self) -> None:
        stop_listening(self.sock)
        for conn in self.accepted:
            conn.close()
        self.thread.join(5)


@pytest.fixture
def silent_server() -> Iterator[SilentServer]:
    """A host that accepts TCP connections and then says nothing (connects time out)."""
    server = SilentServer()
    try:
        yield server
    finally:
        server.close()


def closed_port() -> int:
    """A loopback port nothing listens on (connections are refused at once)."""
    with socket.create_server(("127.0.0.1", 0)) as sock:
        return sock.getsockname()[1]


def ssh_lab_file(
    path: Path, ssh_lab: SshLab, *, extra_hosts: dict[str, dict[str, object]] | None = None
) -> Path:
    """A lab of real sshd hosts: ssh1 (router), ssh2 (router, edge) as root with a key,
    sshpw as the password user with its password in ``$OTTO_PLUGIN_TEST_PASSWORD``."""
    data = lab_dict(
        {"ssh1": ssh_lab[0], "ssh2": ssh_lab[1], "sshpw": ssh_lab[2]},
        name="bench-ssh",
        defaults={"connect_timeout": 5.0, "command_timeout": 20.0},
        user=lambda host_id, _: "ottopw" if host_id == "sshpw" else None,
        password=lambda host_id, _: {"env": PW_ENV} if host_id == "sshpw" else None,
        tags=lambda host_id, _: {"ssh1": ["router"], "ssh2": ["router", "edge"]}.get(host_id),
    )
    del data["hosts"]["sshpw"]["key"]
    data["hosts"]["sshpw"]["agent"] = False
    data["hosts"].update(extra_hosts or {})
    path.write_text(tomli_w.dumps(data))
    return path


SSH_TESTS = """
import asyncio
import os
import pytest

def test_sync(host):
    # SSH_CONNECTION is "client port server port": the command really ran on this host's sshd.
    assert host.run_sync("echo $SSH_CONNECTION").only.output.split()[2] == host.address

async def test_async(host):
    await host.run("export OTTO_PLUGIN_STATE=kept")
    assert (await host.run("echo $OTTO_PLUGIN_STATE")).only.output == "kept"

@pytest.mark.otto_hosts(tags=["router"])
async def test_routers(host):
    assert (await host.oneshot("id -un")).output == "root"

@pytest.mark.otto_hosts(pattern="pw")
def test_secret_stays_hidden(host):
    result = host.run_sync(f"echo 'the password is' {os.environ['OTTO_PLUGIN_TEST_PASSWORD']}; whoami")
    assert result.only.output.endswith("ottopw")
    assert False, "fail on purpose: the failure report shows the transcript"

@pytest.mark.otto_hosts(tags=["router"])
async def test_routers_together(hosts):
    assert [h.id for h in hosts] == ["ssh1", "ssh2"]
    results = await asyncio.gather(*(h.run("echo $SSH_CONNECTION") for h in hosts))
    assert [r.only.output.split()[2] for r in results] == [h.address for h in hosts]

@pytest.mark.otto_hosts(pattern="^(ssh1|dead|mute)$")
def test_needs_unreachable_hosts(hosts):
    raise AssertionError("must not run")
"""


def test_ssh_hosts_unreachable_secrets_reports(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    ssh_lab: SshLab,
    password_user: tuple[str, str],
    silent_server: SilentServer,
) -> None:
    """B29/B30 on real sshd: nodes per host, unreachable hosts error fast naming host and cause
    (one connection attempt per session), the others run; transcripts and JUnit keep secrets out.

    "Fast" without a clock: 'dead' refuses, and a verdict that waited out its connect_timeout,
    set far beyond the whole run's bound (`run`), would fail the run; 'mute' costs one attempt
    of its 1 s connect_timeout, and the message names that timeout."""
    secret = password_user[1]
    monkeypatch.setenv(PW_ENV, secret)
    lab = ssh_lab_file(
        pytester.path / "lab.toml",
        ssh_lab,
        extra_hosts={
            "dead": {"address": "127.0.0.1", "port": closed_port(), "user": "root", "connect_timeout": 600.0},
            "mute": {
                "address": "127.0.0.1",
                "port": silent_server.port,
                "user": "root",
                "connect_timeout": 1.0,
            },
        },
    )
    pytester.makepyfile(test_ssh=SSH_TESTS)
    result = run(pytester, "--lab", str(lab), "-rA", "--junitxml=out.xml")
    # ssh1, ssh2, sshpw: 3 x (sync, async) + 2 routers + routers together pass; sshpw fails
    # on purpose; dead and mute: 2 x (sync, async) error, and so does the test needing them.
    result.assert_outcomes(passed=9, failed=1, errors=5)
    out = result.stdout.str()
    result.stdout.fnmatch_lines(
        [
            f"otto lab: bench-ssh ({lab}, from --lab)",
            "otto hosts (5 of 5): ssh1, ssh2, sshpw, dead, mute",
            "*ERROR at setup of test_sync[[]dead[]]*",
            "pytest-otto: host 'dead' is unreachable: connection to root@127.0.0.1:* refused (*",
            "*ERROR at setup of test_sync[[]mute[]]*",
            "pytest-otto: host 'mute' is unreachable: connect timed out after 1s;"
            " no answer from root@127.0.0.1:* (TCP connect, key exchange or login) (*",
            "*ERROR at setup of test_needs_unreachable_hosts*",
            "pytest-otto: hosts 'dead', 'mute' are unreachable: dead: connection * refused; "
            "mute: connect timed out after 1s; no answer from root@* (*",
        ]
    )
    # Each unreachable host was tried once for the run, not once per test.
    assert len(silent_server.accepted) == 1
    # The failing test's report shows what sshpw ran, with the password masked.
    assert "otto transcript sshpw call" in out and "the password is ********" in out
    junit = (pytester.path / "out.xml").read_text()
    for text in (out, result.stderr.str(), junit):
        assert secret not in text
    cases = ET.fromstring(junit).iter("testcase")
    props = {c.get("name"): [p.get("value") for p in c.iter("property")] for c in cases}
    assert props["test_sync[ssh2]"] == ["bench-ssh", "ssh2"] and props["test_routers[ssh1]"] == [
        "bench-ssh",
        "ssh1",
    ]
    assert props["test_async[dead]"] == ["bench-ssh", "dead"]


def test_ssh_hosts_with_xdist(pytester: pytest.Pytester, ssh_lab: SshLab) -> None:
    """-n 2 on sshd hosts: one worker and one shell per host, both workers busy, a dead host errors."""
    lab = ssh_lab_file(
        pytester.path / "lab.toml",
        ssh_lab,
        extra_hosts={"dead": {"address": "127.0.0.1", "port": closed_port(), "user": "root"}},
    )
    write_where_tests(pytester, 3)
    result = run(pytester, "--lab", str(lab), "--host-pattern", "^(ssh1|ssh2|dead)$", "-n", "2")
    result.assert_outcomes(passed=6, errors=3)
    result.stdout.fnmatch_lines(["pytest-otto: host 'dead' is unreachable: connection to * refused (*"])
    assert_one_worker_and_shell_per_host(pytester, {"ssh1": 3, "ssh2": 3})


CONSOLE_TESTS = """
import os

def test_sync(host):
    assert host.run_sync("echo sync-$((1+1)); id -un").only.output == "sync-2\\nottopw"

async def test_async(host):
    assert (await host.run("echo async-$((2+2))")).only.output == "async-4"
    await host.run(f"echo the password is {os.environ['OTTO_CONSOLE_PW']}")
"""


@pytest.fixture
def own_serial_login_console(password_user: tuple[str, str]) -> Iterator[SerialConsole]:
    """A serial line with a login of this test's own: no other test left it mid-login."""
    with SerialConsole(login=True, name="ttyLAB") as console:
        yield console


def test_console_hosts_from_a_lab_file(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    telnet_login_server: TelnetServer,
    own_serial_login_console: SerialConsole,
) -> None:
    """B27/B29/B30 with telnet and serial hosts built from a lab file: both log in with a
    password from the environment and run sync and async tests; a host whose variable is
    missing errors its own nodes naming the host, the key and the variable; the password
    appears in no output or report."""
    secret = telnet_login_server.password
    monkeypatch.setenv("OTTO_CONSOLE_PW", secret)
    monkeypatch.delenv("OTTO_MISSING_PW", raising=False)
    servers = {"tn": telnet_login_server, "sl": own_serial_login_console, "tn-nopw": telnet_login_server}
    data = lab_dict(
        servers,
        name="bench-console",
        defaults={"connect_timeout": 10.0, "command_timeout": 20.0},
        password=lambda host_id, _: {"env": "OTTO_MISSING_PW" if host_id == "tn-nopw" else "OTTO_CONSOLE_PW"},
    )
    lab = pytester.path / "lab.toml"
    lab.write_text(tomli_w.dumps(data))
    pytester.makepyfile(test_console=CONSOLE_TESTS)
    result = run(pytester, f"--lab={lab}", "-rA", "--junitxml=out.xml")
    result.assert_outcomes(passed=4, errors=2)
    result.stdout.fnmatch_lines(
        [
            "otto hosts (3 of 3): tn, sl, tn-nopw",
            "*ERROR at setup of test_sync[[]tn-nopw[]]*",
            "pytest-otto: host 'tn-nopw' is misconfigured: *host 'tn-nopw': key 'password': "
            "environment variable 'OTTO_MISSING_PW' is not set*",
        ]
    )
    out = result.stdout.str()
    assert "otto transcript sl call" in out and "the password is ********" in out
    junit = (pytester.path / "out.xml").read_text()
    for text in (result.stdout.str(), result.stderr.str(), junit):
        assert secret not in text


SECRET_TESTS = """
import os
import pytest
from pytest_otto import load_lab

# Each test fails on purpose inside pytest-otto, through the Python API: the report
# shows the library's frames with their locals (-l), which must not hold a password.

def test_telnet_login_refused(lab):
    lab["tnbad"].run_sync("true")

def test_serial_login_refused(lab):
    lab["slbad"].run_sync("true")

def test_ssh_login_refused(lab):
    lab["sshbad"].run_sync("true")

def test_command_with_the_password_times_out(lab):
    result = lab["sshpw"].run_sync("echo start; sleep 30 # " + os.environ["OTTO_SECRET_PW"], timeout=1)
    assert result.ok, result

def test_output_with_the_password(lab):
    result = lab["sshpw"].run_sync("echo the password is $OTTO_SECRET_PW")
    assert result.only.output == "the password is not shown", result

async def test_expect_times_out_after_the_password_was_echoed(lab):
    session = await lab["tn"].open_session("echo")
    await session.send("echo $OTTO_SECRET_PW\\n")
    await session.expect("never printed", timeout=1)

def test_broken_lab_file():
    load_lab("broken.toml")
"""


def test_secrets_stay_out_of_failure_reports_with_showlocals(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    ssh_lab: SshLab,
    telnet_login_server: TelnetServer,
    own_serial_login_console: SerialConsole,
) -> None:
    """No password in a report with ``-l -vv``, INFO logs, ``-rA`` and JUnit XML, whether
    the login fails (telnet, serial, ssh: wrong plain-text passwords from the lab file),
    a command or output holds the password (timeout log line, assertion message), an
    ``expect`` times out after the password was echoed, or a lab file with a password in
    plain text is broken. Every test fails, each with the error it is about."""
    secret = telnet_login_server.password
    assert secret
    monkeypatch.setenv("OTTO_SECRET_PW", secret)
    wrong = {"tnbad": "wrong-TN-4k9q", "slbad": "wrong-SL-7f2m", "sshbad": "wrong-SSH-9x3c"}
    servers = {
        "tn": telnet_login_server,
        "tnbad": telnet_login_server,
        "slbad": own_serial_login_console,
        "sshbad": ssh_lab[2],
        "sshpw": ssh_lab[2],
    }
    data = lab_dict(
        servers,
        name="secrets",
        defaults={"connect_timeout": 10.0, "command_timeout": 20.0},
        user=lambda host_id, _: "ottopw",
        password=lambda host_id, _: wrong.get(host_id, {"env": "OTTO_SECRET_PW"}),
    )
    for host_id in ("sshbad", "sshpw"):
        del data["hosts"][host_id]["key"]
        data["hosts"][host_id]["agent"] = False
    (pytester.path / "lab.toml").write_text(tomli_w.dumps(data))
    in_file = "in-file-PW-5r8t"
    (pytester.path / "broken.toml").write_text(
        f'[hosts.r1]\naddress = "127.0.0.9"\npassword = "{in_file}"\nprot = 22\n'
    )
    pytester.makepyfile(test_secrets=SECRET_TESTS)
    result = run(
        pytester,
        f"--lab={pytester.path / 'lab.toml'}",
        "-l",
        "-vv",
        "-rA",
        "--log-level=INFO",
        "--junitxml=out.xml",
    )
    result.assert_outcomes(failed=7)
    result.stdout.fnmatch_lines_random(
        [
            "*HostConnectionError: tnbad: telnet *: login failed: the console rejected the user name*",
            "*HostConnectionError: slbad: serial *: login failed: the console rejected the user name*",
            "*HostConnectionError: sshbad: authentication failed for ottopw@*",
            "*sshpw: 'echo start; sleep 30 # ********' timed out after 1s*",
            "*the password is *********",
            "*ExpectTimeout: tn: no match for 'never printed' within 1s; read so far: *",
            "*LabError: *broken.toml: host 'r1': key 'prot': unknown key*",
        ]
    )
    junit = (pytester.path / "out.xml").read_text()
    for text in (result.stdout.str(), result.stderr.str(), junit):
        for value in (secret, in_file, *wrong.values()):
            assert value not in text


CONSOLE_XDIST_TESTS = """
import os
import pytest

def log(what):
    with open("where.log", "a") as f:
        f.write(f"{what} {os.environ['PYTEST_XDIST_WORKER']}\\n")

@pytest.mark.parametrize("n", range(3))
def test_each_host(host, n):
    assert host.run_sync("echo hi").only.output == "hi"
    log(host.id)

@pytest.mark.parametrize("n", range(4))
@pytest.mark.otto_hosts(pattern="^(dut|tn|ssh1)$")
def test_consoles_and_router(hosts, n):
    assert [h.run_sync("echo hi").only.output for h in hosts] == ["hi", "hi", "hi"]
    log("hosts")

@pytest.mark.parametrize("n", range(4))
async def test_whole_lab(lab, n):
    results = await lab.run_on_all_hosts("echo hi")
    outputs = {h: r.only.output for h, r in results.items()}
    assert outputs == dict.fromkeys(["ssh1", "dut", "tn", "alpha"], "hi")
    log("lab")

@pytest.mark.parametrize("host", ["dut"], indirect=True)
def test_pinned_to_the_serial_console(host):
    assert host.run_sync("echo pinned").only.output == "pinned"
    log("pinned")
"""


def test_xdist_keeps_tests_that_reach_a_console_on_its_worker(
    pytester: pytest.Pytester, ssh_lab: SshLab
) -> None:
    """-n 2 with a serial line and a telnet console (one holder at a time each): the tests
    that use ``hosts`` or the whole ``lab`` run on the consoles' worker, with the consoles'
    own tests and one pinned to a console, so no worker finds a line taken by another (two
    consoles used together share one group: pytest-xdist joins every group a test has);
    the other hosts' own tests still use the second worker."""
    with (
        SerialConsole(login=False, name="ttyXD") as console,
        TelnetServer("127.0.0.54", login=False) as telnet,
    ):
        data = lab_dict({"ssh1": ssh_lab[0]}, name="mixed", defaults={"connect_timeout": 10.0})
        data["hosts"]["dut"] = {"transport": "serial", "device": str(console.device)}
        data["hosts"]["tn"] = {"transport": "telnet", "address": telnet.address, "port": telnet.port}
        data["hosts"]["alpha"] = {"transport": "local"}
        lab = pytester.path / "lab.toml"
        lab.write_text(tomli_w.dumps(data))
        pytester.makepyfile(test_mixed=CONSOLE_XDIST_TESTS)
        result = run(pytester, f"--lab={lab}", "-n", "2")
    result.assert_outcomes(passed=4 * 3 + 4 + 4 + 1)
    rows = [line.split() for line in (pytester.path / "where.log").read_text().splitlines()]
    kinds = ("dut", "tn", "hosts", "lab", "pinned", "ssh1", "alpha")
    workers = {what: {w for name, w in rows if name == what} for what in kinds}
    console_side = workers["dut"] | workers["tn"] | workers["hosts"] | workers["lab"] | workers["pinned"]
    assert len(console_side) == 1, workers
    assert len(console_side | workers["ssh1"] | workers["alpha"]) == 2, workers


def test_a_host_fixture_of_the_users_own_is_left_alone(pytester: pytest.Pytester) -> None:
    """A conftest ``host`` fixture overrides pytest-otto's: one node, no per-host copies."""
    pytester.makeconftest(
        """
        import pytest
        from pytest_otto import LocalHost

        @pytest.fixture(params=["mine"])
        def host(request):
            h = LocalHost(request.param)
            yield h
            h.close_sync()
        """
    )
    pytester.makepyfile(test_own="def test_mine(host):\n    assert host.run_sync('echo ok').ok\n")
    result = run(pytester, "-v")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*test_mine[[]mine[]] PASSED*"])


def test_a_test_that_pins_its_host_meets_the_host_pattern(pytester: pytest.Pytester) -> None:
    lab = write_lab(pytester)
    pytester.makepyfile(
        test_pin="""
        import pytest

        @pytest.mark.parametrize("host", ["beta"], indirect=True)
        def test_pinned(host):
            pass
        """
    )
    result = run(pytester, f"--lab={lab}", "--host-pattern", "alpha", "-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*host 'beta' is not selected by --host-pattern 'alpha'*"])


def test_a_shell_reset_warning_points_at_the_test_line(pytester: pytest.Pytester) -> None:
    """The warning names the line of the call that met the fresh shell, however the test
    made it: awaited on the otto loop, through a blocking twin, or from a loop of its own."""
    pytester.makepyfile(
        test_w="""
        import asyncio
        from pytest_otto import LocalHost

        async def test_async(host):
            await host.run("exit 3")
            await host.run("echo fresh")

        def test_sync(host):
            host.run_sync("exit 3")
            host.run_sync("echo fresh")

        def test_own_loop():
            async def main(h):
                await h.run("exit 3")
                await h.run("echo fresh")
                await h.close()
            asyncio.run(main(LocalHost("mine")))
        """
    )
    result = run(pytester)
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines_random(
        [
            "*test_w.py:6: ShellResetWarning: local: shell session 'default' was replaced*",
            "*test_w.py:10: ShellResetWarning: local: shell session 'default' was replaced*",
            "*test_w.py:15: ShellResetWarning: mine: shell session 'default' was replaced*",
        ]
    )
