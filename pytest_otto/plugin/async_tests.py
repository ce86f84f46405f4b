"""Who runs each ``async def`` test: the otto loop itself, or pytest-asyncio.

Users write ``async def test_x(host)`` with no decorator and no ini setting. A host
test (it uses a pytest-otto fixture and no async fixture) runs on the otto loop, where
its hosts' connections live (``pytest_pyfunc_call``); the other async tests are marked
for pytest-asyncio (see `_runs_on_otto_loop`, `_share_event_loop`).
"""

from __future__ import annotations

import functools
import inspect
import sys
import warnings
from collections.abc import Generator
from typing import Any

import pytest

from .. import loop
from . import _compat
from .state import OTTO_FIXTURES, OttoRun, find_state

__all__: list[str] = []

#: Markers that mean "another async framework runs this test": left alone.
_OTHER_ASYNC_MARKERS = ("asyncio", "anyio", "trio")

#: pytest-asyncio's ini option for the loop scope of tests (pytest-asyncio >= 0.24).
_TEST_LOOP_SCOPE_INI = "asyncio_default_test_loop_scope"

#: pytest-asyncio's ini option for the loop scope of async fixtures; None by default.
_FIXTURE_LOOP_SCOPE_INI = "asyncio_default_fixture_loop_scope"

#: The start of the warning pytest-asyncio (>= 0.24) gives in every run without that option.
_FIXTURE_LOOP_SCOPE_UNSET = r'The configuration option "asyncio_default_fixture_loop_scope" is unset'

#: Set on the async test items that run on the otto loop (`_runs_on_otto_loop`).
_ON_OTTO_LOOP = pytest.StashKey[bool]()


@pytest.hookimpl(wrapper=True, trylast=True)
def pytest_pycollect_makeitem(collector: pytest.Module | pytest.Class, name: str, obj: object) -> Any:
    """Choose who runs each ``async def`` test: the otto loop itself, or pytest-asyncio.

    Users write ``async def test_x(host)`` with no decorator and no ini setting. A host
    test (it uses a pytest-otto fixture and no async fixture) runs on the otto loop,
    where its hosts' connections live: no event loop to build per test, and no thread
    hop per ``await`` (see `_runs_on_otto_loop`). Other async tests get pytest-asyncio's
    marker in its strict mode (its default), so they need no decorator either. Tests
    the user marked ``asyncio``/``anyio``/``trio``, at any level, are left alone.

    ``trylast`` puts this wrapper inside pytest-asyncio's: the marker added here is on
    the items when pytest-asyncio turns marked items into its own kind.
    """
    result = yield
    if not result or not inspect.iscoroutinefunction(obj):
        return result
    config = collector.config
    state = find_state(config)
    asyncio_plugin = _has_pytest_asyncio(config)
    if asyncio_plugin and _asyncio_mode(config) != "strict":
        return result  # auto mode: the user asked pytest-asyncio to run every async test
    # a test loop scope chosen by the user hands every async test to pytest-asyncio
    otto_loop = state is not None and not _compat.ini_is_set(config, _TEST_LOOP_SCOPE_INI)
    for item in result if isinstance(result, list) else [result]:
        if not isinstance(item, pytest.Function) or _marked_async(item):
            continue
        if otto_loop and _runs_on_otto_loop(item):
            item.stash[_ON_OTTO_LOOP] = True
        elif asyncio_plugin:
            item.add_marker(pytest.mark.asyncio)
            if state is not None:
                state.marked.add(id(obj))
    return result


def _marked_async(item: pytest.Function) -> bool:
    # one walk up the item's parents, not one per marker name
    return any(mark.name in _OTHER_ASYNC_MARKERS for mark in item.iter_markers())


def _runs_on_otto_loop(item: pytest.Function) -> bool:
    """An unmarked async host test with no async fixture runs on the otto loop.

    Why not pytest-asyncio's loop: every ``await host.run()`` from another loop is a
    hop to the otto thread and back (about 0.1 ms on 2 cores), and pytest-asyncio
    adds about 0.4 ms to each node; on the otto loop a command costs what the shell
    costs. Left to pytest-asyncio: tests using an async fixture (its objects belong
    to pytest-asyncio's loop), tests not using a pytest-otto fixture, and (decided by
    the caller, once) every async test once the user chose a test loop scope (ini
    ``asyncio_default_test_loop_scope``). Blocking twins (``run_sync``) raise there:
    the test must ``await``.
    """
    fixturenames = item.fixturenames
    if OTTO_FIXTURES.isdisjoint(fixturenames):
        return False
    defs = _compat.item_fixture_defs(item)
    for name in fixturenames:
        fixturedefs = defs.get(name)
        if fixturedefs and _is_async_function(fixturedefs[-1].func):
            return False
    return True


def _is_async_function(func: object) -> bool:
    try:
        return _is_async_cached(func)
    except TypeError:  # an unhashable callable
        return _is_async_uncached(func)


def _is_async_uncached(func: object) -> bool:
    return inspect.iscoroutinefunction(func) or inspect.isasyncgenfunction(func)


#: Asked for every fixture of every async item: a 300-host lab asks it thousands of
#: times for the same few fixture functions.
_is_async_cached = functools.lru_cache(maxsize=4096)(_is_async_uncached)


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """Run a test chosen by `_runs_on_otto_loop` on the otto loop; the main thread waits."""
    if not pyfuncitem.stash.get(_ON_OTTO_LOOP, False):
        return None
    loop.wait(pyfuncitem.obj(**_call_arguments(pyfuncitem)))
    return True


#: Why a blocking twin raises inside an async host test that pytest-asyncio runs.
BLOCKING_IN_ASYNC_TEST = (
    "a blocking pytest-otto call was made inside an async host test; await the async method instead"
)


# A second pytest_pyfunc_call in this module: its own name, the hook's by specname
# (pytest only reads names that start with "pytest_").
@pytest.hookimpl(wrapper=True, specname="pytest_pyfunc_call")
def pytest_pyfunc_call_refusing_blocking(pyfuncitem: pytest.Function) -> Generator[None, object, object]:
    """Refuse the blocking twins inside every async host test, whoever runs it.

    An async host test (it uses ``host``, ``hosts``, ``lab`` or ``local_host``) runs on
    the otto loop in strict mode, where a blocking twin cannot work (the loop would wait
    for itself: `loop.wait` raises); with an async fixture, in auto mode or with a test
    loop scope pytest-asyncio runs it, where a blocking twin would work but stall that
    loop. One behaviour for all: ``RuntimeError``, saying to ``await``. Other async
    tests keep the library's rule (a blocking twin works from the caller's own loop),
    and a thread the test starts (``asyncio.to_thread``) may still block.
    """
    # pytest-asyncio swaps in a sync wrapper (functools.wraps) for the call: look beneath it
    is_async = inspect.iscoroutinefunction(inspect.unwrap(pyfuncitem.obj))
    uses_otto = not OTTO_FIXTURES.isdisjoint(pyfuncitem.fixturenames)
    if not (is_async and uses_otto) or pyfuncitem.stash.get(_ON_OTTO_LOOP, False):
        return (yield)
    with loop.refuse_blocking(BLOCKING_IN_ASYNC_TEST):
        return (yield)


def _call_arguments(pyfuncitem: pytest.Function) -> dict[str, Any]:
    """The fixture values the test function takes, by its own signature (pytest's rule)."""
    funcargs = pyfuncitem.funcargs
    parameters = inspect.signature(pyfuncitem.obj).parameters.values()
    return {p.name: funcargs[p.name] for p in parameters if p.kind in _NAMED and p.name in funcargs}


_NAMED = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)


def _has_pytest_asyncio(config: pytest.Config) -> bool:
    """pytest-asyncio is active: by its entry point, or loaded as ``-p pytest_asyncio.plugin``."""
    if config.pluginmanager.hasplugin("asyncio"):
        return True
    module = sys.modules.get("pytest_asyncio.plugin")
    return module is not None and config.pluginmanager.is_registered(module)


def _asyncio_mode(config: pytest.Config) -> str:
    mode = config.getoption("asyncio_mode", None) or config.getini("asyncio_mode")
    return str(getattr(mode, "value", mode) or "strict")


def _fixture_loop_scope(fixturedef: Any, config: pytest.Config) -> str | None:
    """The event loop scope of an async fixture, as pytest-asyncio decides it; None for sync ones."""
    func = fixturedef.func
    if not _is_async_function(func):
        return None
    scope = _compat.fixture_loop_scope(func) or _default_fixture_loop_scope(config)
    return str(scope or fixturedef.scope)


def _default_fixture_loop_scope(config: pytest.Config) -> str | None:
    """pytest-asyncio's ini ``asyncio_default_fixture_loop_scope``; None: the fixture's own scope."""
    try:
        scope = config.getini(_FIXTURE_LOOP_SCOPE_INI)
    except ValueError:  # pytest-asyncio not loaded
        return None
    return None if scope in (None, "", "*", "fixture-scope") else str(scope)


def _share_event_loop(config: pytest.Config, state: OttoRun, items: list[pytest.Item]) -> None:
    """Run the async host tests this plugin left to pytest-asyncio in its session loop.

    These are the host tests with an async fixture (`_runs_on_otto_loop` takes the
    others). pytest-asyncio gives every test a new event loop by default, and
    building and closing it costs about 0.6 ms a node on 2 cores; a host test gains
    nothing from a fresh loop, its hosts live on the otto loop. So such a test runs in
    the session loop unless:

    - the user chose a loop scope for tests (ini ``asyncio_default_test_loop_scope``,
      also ``= function`` to keep a loop per test), or runs pytest-asyncio in auto
      mode (then the plugin marks nothing);
    - one of its async fixtures has a narrower loop scope: its objects would belong to
      another loop than the test (``attached to a different loop``).
    """
    if not state.marked or _compat.ini_is_set(config, _TEST_LOOP_SCOPE_INI):
        return
    try:
        config.getini(_TEST_LOOP_SCOPE_INI)
    except ValueError:  # pytest-asyncio < 0.24: no loop scopes for tests
        return
    session_loop = pytest.mark.asyncio(loop_scope="session")
    for item in items:
        if id(getattr(item, "obj", None)) not in state.marked:
            continue
        fixturenames = getattr(item, "fixturenames", ())
        if OTTO_FIXTURES.isdisjoint(fixturenames):
            continue
        defs = _compat.item_fixture_defs(item)
        if any(
            _fixture_loop_scope(defs[name][-1], config) not in (None, "session")
            for name in fixturenames
            if defs.get(name)
        ):
            continue
        item.add_marker(session_loop, append=False)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Let the async host tests left to pytest-asyncio share its session loop."""
    state = find_state(config)
    if state is not None:
        _share_event_loop(config, state, items)
    if _has_pytest_asyncio(config) and config.getini(_FIXTURE_LOOP_SCOPE_INI) is None:
        _find_unscoped_async_fixtures(items)


# -- pytest-asyncio's warning about the loop scope of async fixtures --------------------


def quiet_fixture_loop_scope_warning() -> None:
    """Ignore pytest-asyncio's run-wide "asyncio_default_fixture_loop_scope is unset" warning.

    pytest-asyncio gives it in every run without that ini option, with or without an
    async fixture; pytest-otto promises ``async def`` tests with no pytest-asyncio
    setting, and under ``-W error`` the warning is an INTERNALERROR before any test. It
    only matters to async fixtures, so the plugin gives it again, as a warning of the
    first test that uses an async fixture without a loop scope (`_warn_unscoped`).
    Called from ``pytest_configure`` (tryfirst), inside pytest's warnings context for
    the run: the filter ends with the run.
    """
    warnings.filterwarnings(
        "ignore", message=_FIXTURE_LOOP_SCOPE_UNSET, category=pytest.PytestDeprecationWarning
    )


#: Async fixtures an item uses that have no loop scope of their own, when the ini has none.
_UNSCOPED_ASYNC_FIXTURES = pytest.StashKey[list[str]]()


def _find_unscoped_async_fixtures(items: list[pytest.Item]) -> None:
    for item in items:
        defs = _compat.item_fixture_defs(item)
        names = [
            name
            for name in getattr(item, "fixturenames", ())
            if defs.get(name)
            and _is_async_function(defs[name][-1].func)
            and _compat.fixture_loop_scope(defs[name][-1].func) is None
        ]
        if names:
            item.stash[_UNSCOPED_ASYNC_FIXTURES] = names


_WARNED_UNSCOPED = pytest.StashKey[bool]()


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Give pytest-asyncio's loop scope warning at the first test it concerns (see above)."""
    names = item.stash.get(_UNSCOPED_ASYNC_FIXTURES, None)
    if not names or item.config.stash.get(_WARNED_UNSCOPED, False):
        return
    item.config.stash[_WARNED_UNSCOPED] = True
    warnings.warn(
        pytest.PytestDeprecationWarning(
            f"pytest-asyncio: async fixture(s) {', '.join(names)} have no loop_scope and the ini option "
            f"{_FIXTURE_LOOP_SCOPE_INI} is unset: pytest-asyncio will change their event loop scope "
            f"to 'function' in a future release. Set {_FIXTURE_LOOP_SCOPE_INI} (for example to "
            "'function') in your pytest configuration."
        ),
        stacklevel=1,
    )
