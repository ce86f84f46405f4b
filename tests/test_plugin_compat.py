"""The private pytest, pytest-asyncio and pytest-xdist API the plugin still reads (issue 21.5).

Everything private lives in ``pytest_otto/plugin/_compat.py``. These tests check each
piece against the installed releases, so a release that renames or changes one fails
here, by name, instead of silently changing how async tests are routed or how
xdist groups hosts. What a public hook could do is no longer read privately: the
plugin finds its own ``host`` fixture in the fixture closure, passes a test's
arguments by its signature, and never edits markers in place (see the last test).
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest
import pytest_asyncio
from test_plugin import run

from pytest_otto.plugin import _compat

PACKAGE = Path(_compat.__file__).parent


def test_ini_is_set_tells_a_users_value_from_the_default(pytester: pytest.Pytester) -> None:
    """pytest-asyncio's test loop scope defaults to 'function': only ``_compat`` can tell
    'set to function' (in the ini file or with -o) from 'not set'."""
    name = "asyncio_default_test_loop_scope"
    default = pytester.parseconfig()
    assert default.getini(name) == "function"
    assert not _compat.ini_is_set(default, name)
    assert _compat.ini_is_set(pytester.parseconfig("-o", f"{name}=function"), name)
    pytester.makeini(f"[pytest]\n{name} = function\n")
    assert _compat.ini_is_set(pytester.parseconfig(), name)


ASYNC_FIXTURES = """
import pytest, pytest_asyncio

@pytest_asyncio.fixture(loop_scope="module")
async def scoped():
    return 1

@pytest_asyncio.fixture
async def unscoped():
    return 2

@pytest.fixture
def plain():
    return 3

def test_func(scoped, unscoped, plain):
    pass
"""


def test_fixture_definitions_and_loop_scopes_of_an_item(pytester: pytest.Pytester) -> None:
    """``Function._fixtureinfo.name2fixturedefs`` gives each fixture's function, and
    pytest-asyncio records ``loop_scope`` on it as ``_loop_scope``."""
    item = pytester.getitem(ASYNC_FIXTURES)
    defs = _compat.item_fixture_defs(item)
    funcs = {name: defs[name][-1].func for name in ("scoped", "unscoped", "plain")}
    assert inspect.iscoroutinefunction(funcs["scoped"]) and not inspect.iscoroutinefunction(funcs["plain"])
    assert _compat.fixture_loop_scope(funcs["scoped"]) == "module"
    assert _compat.fixture_loop_scope(funcs["unscoped"]) is None
    assert _compat.fixture_loop_scope(funcs["plain"]) is None
    assert pytest_asyncio.__version__  # the release these checks ran against, for the log


def test_xdist_scope_scheduling_still_asks_split_scope() -> None:
    """pytest-xdist's LoadScopeScheduling names each test's scope with ``_split_scope``;
    the plugin's scheduler answers through it (its behaviour: tests/test_plugin_xdist.py)."""
    xdist_scheduler = pytest.importorskip("xdist.scheduler")
    base = xdist_scheduler.LoadScopeScheduling
    assert "_split_scope" in vars(base)
    assert "self._split_scope(" in inspect.getsource(base.schedule)
    scheduling = _compat.scope_scheduling()
    assert issubclass(scheduling, base)
    probe = scheduling.__new__(scheduling)
    probe.scope_of = lambda nodeid: f"group of {nodeid}"
    assert probe._split_scope("t.py::test[a]") == "group of t.py::test[a]"


def test_private_api_is_read_only_in_compat() -> None:
    """No other module of the plugin touches the private names ``_compat`` wraps, nor
    edits markers in place."""
    private = ("_fixtureinfo", "_inicfg", "_override_ini", "_arg2fixturedefs", "_loop_scope", "_split_scope")
    for path in PACKAGE.glob("*.py"):
        if path.name == "_compat.py":
            continue
        text = path.read_text()
        found = [name for name in (*private, "own_markers", "_nodeid") if re.search(rf"\.{name}\b", text)]
        assert not found, f"{path.name} uses {found}: go through _compat"


BLOCKING_IN_ASYNC = """
import asyncio
import pytest
from pytest_otto import LocalHost

async def test_refused(host):
    with pytest.raises(RuntimeError, match="await the async method instead"):
        host.run_sync("true")
    assert (await host.run("echo awaited")).only.output == "awaited"

async def test_a_thread_may_block(host):
    result = await asyncio.to_thread(host.run_sync, "echo threaded")
    assert result.only.output == "threaded"

def test_sync_tests_still_block(host):
    assert host.run_sync("echo $((1+1))").only.output == "2"

async def test_not_a_host_test_keeps_the_library_rule():
    with LocalHost() as own:  # a host of the test's own: blocking works from any loop
        assert own.run_sync("echo own").only.output == "own"
"""


@pytest.mark.parametrize(
    "mode",
    [(), ("-o", "asyncio_mode=auto"), ("-o", "asyncio_default_test_loop_scope=function")],
    ids=["strict-otto-loop", "auto-mode", "test-loop-scope"],
)
def test_a_blocking_twin_in_an_async_test_is_refused_in_every_mode(
    pytester: pytest.Pytester, mode: tuple[str, ...]
) -> None:
    """run_sync inside an async host test raises the same RuntimeError whether the otto
    loop runs the test (strict mode) or pytest-asyncio does (auto mode, a test loop
    scope); handed to a thread it blocks as it may; sync tests, and async tests that use
    no pytest-otto fixture, keep working as before in every mode."""
    pytester.makepyfile(test_blocking=BLOCKING_IN_ASYNC)
    result = run(pytester, *mode)
    result.assert_outcomes(passed=4)
