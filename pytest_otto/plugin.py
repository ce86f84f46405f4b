"""The pytest plugin: ``--lab``, ``--host-pattern``, host fixtures, one test node per host.

The plugin is thin: loading a lab file, selecting hosts, connecting them and
recording what they ran are library features (`pytest_otto.lab`, `Host`,
`Transcript`); this module only wires them into pytest's hooks:

- ``pytest_sessionstart`` loads the lab (``--lab`` > ``$OTTO_LAB`` > ini ``otto_lab``)
  and checks ``--host-pattern``; mistakes are usage errors (exit code 4) before any test.
- ``pytest_generate_tests`` turns a test that uses ``host`` into one node per selected
  host (``test_x[router1]``), after ``@pytest.mark.otto_hosts`` filters.
- ``pytest_runtestloop`` connects every host the run needs once, concurrently (pre-flight);
  an unreachable host errors its own nodes, the others run.
- ``pytest_runtest_makereport`` adds the transcript of each host the test used to the
  report (a `TranscriptWatch` tells which: the cost does not grow with the lab).
- ``pytest_pycollect_makeitem`` lets ``async def`` tests run with no decorator and no
  ini setting: host tests run on the otto loop (``pytest_pyfunc_call``), the others
  are marked for pytest-asyncio (see `_runs_on_otto_loop`, `_share_event_loop`).
"""

from __future__ import annotations

import inspect
import os
import re
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from . import loop
from .hosts.base import Host
from .hosts.local import LocalHost
from .lab import Lab, LabError, default_lab, load_lab, set_active_lab
from .transcript import TranscriptWatch

__all__ = ["OTTO_LAB_ENV", "OttoFixtures"]

#: Environment variable naming the lab file (between ``--lab`` and ini ``otto_lab``).
OTTO_LAB_ENV = "OTTO_LAB"

#: Markers that mean "another async framework runs this test": left alone.
_OTHER_ASYNC_MARKERS = ("asyncio", "anyio", "trio")

#: Hosts listed in the header and in usage errors before "... and N more".
_LIST_LIMIT = 30

#: The fixtures of this plugin: an async test using one of them gets the session's loop.
_OTTO_FIXTURES = frozenset({"host", "hosts", "lab", "local_host"})

#: pytest-asyncio's ini option for the loop scope of tests (pytest-asyncio >= 0.24).
_TEST_LOOP_SCOPE_INI = "asyncio_default_test_loop_scope"


# -- state ---------------------------------------------------------------------------


@dataclass
class _Otto:
    """What the plugin holds for one pytest run (one per xdist worker)."""

    lab: Lab
    source: str  # where the lab came from, for the header
    pattern: str | None
    selected: list[Host]
    local: LocalHost | None = None
    #: host id -> None (connected) or the exception of its one connection attempt.
    connected: dict[str, BaseException | None] = field(default_factory=dict)
    #: Tells which transcripts moved during a test phase (open for the session).
    watch: TranscriptWatch = field(default_factory=TranscriptWatch)
    #: id() of the test functions this plugin marked for pytest-asyncio.
    marked: set[int] = field(default_factory=set)
    _order: dict[str, int] = field(default_factory=dict)

    def selected_for(self, node: pytest.Item | pytest.Function | Any) -> tuple[list[Host], str]:
        """The selected hosts that ``node``'s ``otto_hosts`` markers allow, and why none if so."""
        hosts = list(self.selected)  # never empty: an empty lab or selection is a usage error
        for mark in node.iter_markers("otto_hosts"):
            pattern, tags = _marker_args(mark, node)
            allowed = {id(h) for h in self.lab.select(pattern=pattern, tags=tags)}
            hosts = [h for h in hosts if id(h) in allowed]
            if not hosts:
                return [], (
                    f"no selected host of lab {self.lab.name!r} matches "
                    f"otto_hosts(pattern={pattern!r}, tags={tags!r})"
                )
        return hosts, ""

    def connect(self, hosts: Iterable[Host]) -> None:
        """Connect hosts never tried before, concurrently; remember each outcome."""
        todo = [h for h in dict.fromkeys(hosts) if h.id not in self.connected]
        if not todo:
            return
        ids = "|".join(re.escape(h.id) for h in todo)
        outcome = loop.wait(self.lab.connect_all(pattern=f"^(?:{ids})$"))
        for h in todo:
            self.connected[h.id] = outcome.get(h.id)

    def require(self, hosts: Iterable[Host]) -> None:
        """Fail the current test setup if one of ``hosts`` could not be connected."""
        hosts = list(hosts)
        self.connect(hosts)
        failed = [(h.id, self.connected[h.id]) for h in hosts if self.connected[h.id] is not None]
        verdicts = {_verdict(exc) for _, exc in failed}
        if len(failed) == 1:
            host_id, exc = failed[0]
            what = f"host {host_id!r} is {_verdict(exc)}: {_describe(exc)}"
        elif failed:
            names = ", ".join(repr(host_id) for host_id, _ in failed)
            causes = "; ".join(f"{host_id}: {_describe(exc)}" for host_id, exc in failed)
            verdict = f"are {verdicts.pop()}" if len(verdicts) == 1 else "cannot be used"
            what = f"hosts {names} {verdict}: {causes}"
        else:
            return
        pytest.fail(f"pytest-otto: {what} (one connection attempt per session)", pytrace=False)

    def report_order(self, host_id: str) -> int:
        """Where a host's transcript section goes: lab order, then hosts from elsewhere."""
        if len(self._order) != len(self.lab.hosts):
            self._order = {h.id: i for i, h in enumerate(self.lab.hosts)}
        return self._order.get(host_id, len(self._order))


_STATE = pytest.StashKey[_Otto]()

#: Set on the async test items that run on the otto loop (`_runs_on_otto_loop`).
_ON_OTTO_LOOP = pytest.StashKey[bool]()


def _state(config: pytest.Config) -> _Otto:
    try:
        return config.stash[_STATE]
    except KeyError:
        raise RuntimeError(
            "pytest-otto: the lab is not loaded yet (fixtures need a running session)"
        ) from None


def _verdict(exc: BaseException | None) -> str:
    """ "misconfigured" for a mistake in the lab (a missing password variable), else "unreachable"."""
    return "misconfigured" if isinstance(exc, LabError) else "unreachable"


def _describe(exc: BaseException | None) -> str:
    """The cause of a failed connection, without the host id the message already has."""
    cause = getattr(exc, "cause", None)
    if isinstance(cause, str) and cause:
        return cause  # HostConnectionError
    if isinstance(exc, LabError):
        return str(exc)  # names the file, the host and the key
    return f"{type(exc).__name__}: {exc}"


def _marker_args(mark: pytest.Mark, node: Any) -> tuple[str | None, list[str] | None]:
    """``otto_hosts(pattern=None, tags=None)``; a bad regex fails the collection of ``node``."""
    kwargs = dict(mark.kwargs)
    if mark.args:
        kwargs.setdefault("pattern", mark.args[0])
    unknown = set(kwargs) - {"pattern", "tags"}
    if unknown or len(mark.args) > 1:
        pytest.fail(f"{node.nodeid}: otto_hosts takes pattern= and tags= only, got {mark}", pytrace=False)
    pattern, tags = kwargs.get("pattern"), kwargs.get("tags")
    if isinstance(tags, str):
        tags = [tags]
    if pattern is not None:
        try:
            re.compile(pattern)
        except (re.error, TypeError) as exc:
            pytest.fail(
                f"{node.nodeid}: otto_hosts pattern {pattern!r} is not a valid regex: {exc}", pytrace=False
            )
    return pattern, list(tags) if tags is not None else None


def _list_ids(hosts: Iterable[Host]) -> str:
    ids = [h.id for h in hosts]
    shown = ", ".join(ids[:_LIST_LIMIT])
    if len(ids) > _LIST_LIMIT:
        shown += f", ... and {len(ids) - _LIST_LIMIT} more"
    return shown or "(none)"


# -- options, markers ----------------------------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    """``--lab``, ``--host-pattern`` and the ``otto_lab`` ini option."""
    group = parser.getgroup("otto", "pytest-otto (hardware-in-the-loop hosts)")
    group.addoption(
        "--lab",
        dest="otto_lab",
        metavar="PATH",
        default=None,
        help=(
            f"Lab file (lab.toml) with the hosts to test. Precedence: --lab, then ${OTTO_LAB_ENV}, "
            "then the ini option otto_lab. None given: one local host 'local'."
        ),
    )
    group.addoption(
        "--host-pattern",
        dest="otto_host_pattern",
        metavar="REGEX",
        default=None,
        help="Only test the hosts whose id matches REGEX (re.search). No match is a usage error.",
    )
    parser.addini(
        "otto_lab",
        f"Lab file used when neither --lab nor ${OTTO_LAB_ENV} is given (relative to the ini file).",
        default="",
    )


def pytest_configure(config: pytest.Config) -> None:
    """Register the marker and the fixtures; group each host's nodes on one xdist worker."""
    config.pluginmanager.register(OttoFixtures(), "otto-fixtures")
    config.addinivalue_line(
        "markers",
        "otto_hosts(pattern=None, tags=None): run this test only on the selected hosts whose id "
        "matches the regex pattern (re.search) and that carry every tag in tags.",
    )
    option = config.option
    if (
        getattr(option, "dist", "no") == "load"
        and getattr(option, "numprocesses", None)
        and getattr(config.known_args_namespace, "dist", "no") == "no"
        and not getattr(config.known_args_namespace, "distload", False)
    ):
        # -n without --dist: pytest-xdist chose "load"; keep a host's nodes on one worker.
        option.dist = "loadgroup"
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None and workerinput.get("otto_loadgroup"):
        # Workers re-parse the command line, which has no --dist loadgroup: say it here.
        option.loadgroup = True
    _warn_if_lab_path_chose_rootdir(config)


def _warn_if_lab_path_chose_rootdir(config: pytest.Config) -> None:
    """Say so when ``--lab PATH`` (two arguments) made pytest look for its ini file elsewhere.

    pytest picks its rootdir and ini file from the path arguments of the command
    line before any plugin has added its options, so it takes the PATH of ``--lab
    PATH`` for a test path. For a lab file outside the current folder that moves
    the search away from the project: its ini file (markers, ``asyncio_mode``,
    ``testpaths``) is silently not read. ``--lab=PATH`` is one argument and safe.
    """
    value = config.option.otto_lab
    args = list(config.invocation_params.args)
    if not value or "--lab" not in args:
        return
    here = config.invocation_params.dir.resolve()
    lab = (here / Path(value).expanduser()).resolve()
    if lab.is_relative_to(here):
        return  # the search starts inside the current folder, as it would without the lab
    project_ini = _nearest_ini_file(here)
    if project_ini is None or (config.inipath is not None and config.inipath.resolve() == project_ini):
        return  # a test path argument kept the search in the project, or there is nothing to miss
    chosen = f"ini file {config.inipath}" if config.inipath else "no ini file"
    message = (
        f"pytest-otto: with '--lab {value}' pytest took the lab file for a test path when it "
        f"chose its rootdir ({config.rootpath}) and {chosen}, so {project_ini} was not read. "
        f"Write --lab={value} (one argument), or set {OTTO_LAB_ENV} or ini otto_lab."
    )
    try:
        config.issue_config_time_warning(pytest.PytestConfigWarning(message), stacklevel=2)
    except pytest.PytestConfigWarning:  # -W error: a usage error, not a traceback
        raise pytest.UsageError(message) from None


#: Files pytest reads its settings from, and the section that makes one count.
_INI_FILES = (
    ("pytest.ini", ""),
    (".pytest.ini", ""),
    ("pyproject.toml", "[tool.pytest"),
    ("tox.ini", "[pytest]"),
    ("setup.cfg", "[tool:pytest]"),
)


def _nearest_ini_file(start: Path) -> Path | None:
    """The ini file pytest would find from ``start`` upwards with no path arguments."""
    for folder in (start, *start.parents):
        for name, section in _INI_FILES:
            candidate = folder / name
            try:
                if candidate.is_file() and section in candidate.read_text(errors="replace"):
                    return candidate.resolve()
            except OSError:
                continue
    return None


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """pytest-xdist: tell each worker that the controller switched to ``--dist loadgroup``."""
    node.workerinput["otto_loadgroup"] = node.config.getoption("dist") == "loadgroup"


def _lab_path(config: pytest.Config) -> tuple[Path | None, str]:
    """The lab file to load and where its name came from (option > env > ini)."""
    if config.option.otto_lab:
        return config.invocation_params.dir / Path(config.option.otto_lab).expanduser(), "--lab"
    env = os.environ.get(OTTO_LAB_ENV, "")
    if env:
        return config.invocation_params.dir / Path(env).expanduser(), f"${OTTO_LAB_ENV}"
    ini = str(config.getini("otto_lab") or "")
    if ini:
        base = config.inipath.parent if config.inipath else config.rootpath
        return base / Path(ini).expanduser(), "ini otto_lab"
    return None, "default"


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    """Load the lab and apply ``--host-pattern``; any mistake is a usage error (exit 4)."""
    config = session.config
    path, source = _lab_path(config)
    if path is None:
        lab = default_lab()
    else:
        try:
            lab = load_lab(path)
        except LabError as exc:
            raise pytest.UsageError(f"pytest-otto: {exc} (lab file given by {source})") from None
        if not lab.hosts:  # a bench file that lost its hosts must not make a green run
            raise pytest.UsageError(
                f"pytest-otto: lab {lab.name!r} ({lab.path}) has no hosts; add a [hosts.<id>] table"
                f" (lab file given by {source})"
            )
    pattern = config.option.otto_host_pattern
    if pattern is None:
        selected = list(lab.hosts)
    else:
        where = f"lab {lab.name!r}" + (f" ({lab.path})" if path else "")
        try:
            re.compile(pattern)
        except re.error as exc:
            raise pytest.UsageError(
                f"pytest-otto: --host-pattern {pattern!r} is not a valid regular expression ({exc}); "
                f"the hosts of {where} are: {_list_ids(lab.hosts)}"
            ) from None
        selected = lab.select(pattern=pattern)
        if not selected:
            raise pytest.UsageError(
                f"pytest-otto: --host-pattern {pattern!r} selects no host; "
                f"the hosts of {where} are: {_list_ids(lab.hosts)}"
            )
    local = next((h for h in lab.hosts if h.id == "local" and isinstance(h, LocalHost)), None)
    state = config.stash[_STATE] = _Otto(lab, source, pattern, selected, local)
    state.watch.open()
    set_active_lab(lab)


def pytest_report_header(config: pytest.Config) -> list[str] | None:
    """The lab (name, file) and the selected hosts."""
    state = config.stash.get(_STATE, None)
    if state is None:
        return None
    lab = state.lab
    if state.source == "default":
        lines = [f"otto lab: {lab.name} (no --lab, ${OTTO_LAB_ENV} or otto_lab: the local machine)"]
    else:
        lines = [f"otto lab: {lab.name} ({lab.path}, from {state.source})"]
    count = f"{len(state.selected)} of {len(lab.hosts)}"
    if state.pattern is not None:
        count += f", --host-pattern {state.pattern!r}"
    lines.append(f"otto hosts ({count}): {_list_ids(state.selected)}")
    if getattr(config.option, "dist", "no") == "loadgroup":
        lines.append("otto xdist: --dist loadgroup, the tests of one host run on one worker")
    return lines


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Close every host of the lab (and the local host): shells and connections end here."""
    state = session.config.stash.get(_STATE, None)
    if state is None:
        return
    try:
        state.lab.close_sync()
        if state.local is not None and state.local not in state.lab.hosts:
            state.local.close_sync()
    finally:
        state.watch.close()
        set_active_lab(None)


# -- async tests -----------------------------------------------------------------------


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
    state = config.stash.get(_STATE, None)
    asyncio_plugin = _has_pytest_asyncio(config)
    if asyncio_plugin and _asyncio_mode(config) != "strict":
        return result  # auto mode: the user asked pytest-asyncio to run every async test
    # a test loop scope chosen by the user hands every async test to pytest-asyncio
    otto_loop = state is not None and not _ini_is_set(config, _TEST_LOOP_SCOPE_INI)
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
    return any(item.get_closest_marker(name) for name in _OTHER_ASYNC_MARKERS)


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
    if _OTTO_FIXTURES.isdisjoint(fixturenames):
        return False
    defs = item._fixtureinfo.name2fixturedefs
    for name in fixturenames:
        fixturedefs = defs.get(name)
        if fixturedefs and _is_async_function(fixturedefs[-1].func):
            return False
    return True


def _is_async_function(func: object) -> bool:
    return inspect.iscoroutinefunction(func) or inspect.isasyncgenfunction(func)


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """Run a test chosen by `_runs_on_otto_loop` on the otto loop; the main thread waits."""
    if not pyfuncitem.stash.get(_ON_OTTO_LOOP, False):
        return None
    funcargs = pyfuncitem.funcargs
    loop.wait(pyfuncitem.obj(**{name: funcargs[name] for name in pyfuncitem._fixtureinfo.argnames}))
    return True


def _has_pytest_asyncio(config: pytest.Config) -> bool:
    """pytest-asyncio is active: by its entry point, or loaded as ``-p pytest_asyncio.plugin``."""
    if config.pluginmanager.hasplugin("asyncio"):
        return True
    module = sys.modules.get("pytest_asyncio.plugin")
    return module is not None and config.pluginmanager.is_registered(module)


def _asyncio_mode(config: pytest.Config) -> str:
    mode = config.getoption("asyncio_mode", None) or config.getini("asyncio_mode")
    return str(getattr(mode, "value", mode) or "strict")


def _ini_is_set(config: pytest.Config, name: str) -> bool:
    """The user gave ini option ``name`` (in a config file or with ``-o``)."""
    inicfg = getattr(config, "_inicfg", None)  # pytest >= 9: file values and -o overrides
    if inicfg is None:  # pytest 8
        overrides = getattr(config, "_override_ini", None) or ()
        if any(str(o).split("=", 1)[0].strip() == name for o in overrides):
            return True
        inicfg = config.inicfg
    return name in inicfg


def _fixture_loop_scope(fixturedef: Any, config: pytest.Config) -> str | None:
    """The event loop scope of an async fixture, as pytest-asyncio decides it; None for sync ones."""
    func = fixturedef.func
    if not _is_async_function(func):
        return None
    scope = getattr(func, "_loop_scope", None)
    if scope is None and _ini_is_set(config, "asyncio_default_fixture_loop_scope"):
        scope = config.getini("asyncio_default_fixture_loop_scope")
        if scope == "*":
            scope = None  # "match the fixture's own scope"
    return str(scope or fixturedef.scope)


def _share_event_loop(config: pytest.Config, state: _Otto, items: list[pytest.Item]) -> None:
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
    if not state.marked or _ini_is_set(config, _TEST_LOOP_SCOPE_INI):
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
        if _OTTO_FIXTURES.isdisjoint(fixturenames):
            continue
        defs = getattr(getattr(item, "_fixtureinfo", None), "name2fixturedefs", {})
        if any(
            _fixture_loop_scope(defs[name][-1], config) not in (None, "session")
            for name in fixturenames
            if defs.get(name)
        ):
            continue
        item.add_marker(session_loop, append=False)


# -- parametrization --------------------------------------------------------------------


def _parametrized_by_user(metafunc: pytest.Metafunc, name: str) -> bool:
    for mark in metafunc.definition.iter_markers("parametrize"):
        names = mark.args[0] if mark.args else mark.kwargs.get("argnames", "")
        if isinstance(names, str):
            names = [n.strip() for n in names.split(",")]
        if name in names:
            return True
    return False


def _host_is_ours(metafunc: pytest.Metafunc) -> bool:
    """Whether the test's ``host`` is pytest-otto's fixture, not one of the user's own."""
    definitions = getattr(metafunc, "_arg2fixturedefs", {}).get("host") or ()
    if not definitions:
        return True
    return isinstance(getattr(definitions[-1].func, "__self__", None), OttoFixtures)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """One node per selected host for tests that use ``host``: ``test_x[host_id]``.

    Not for a test whose ``host`` is a fixture of the user's own (conftest.py), or that
    pins its hosts with its own ``parametrize``.
    """
    if (
        "host" not in metafunc.fixturenames
        or _parametrized_by_user(metafunc, "host")
        or not _host_is_ours(metafunc)
    ):
        return
    state = _state(metafunc.config)
    hosts, why_none = state.selected_for(metafunc.definition)
    xdist = metafunc.config.pluginmanager.hasplugin("xdist")
    if hosts:
        params = [
            pytest.param(h.id, id=h.id, marks=[pytest.mark.xdist_group(h.id)] if xdist else []) for h in hosts
        ]
    else:
        # not a possible host id (those have no spaces), so -k on a host never selects it
        params = [pytest.param(None, id="no host", marks=pytest.mark.skip(reason=why_none))]
    metafunc.parametrize("host", params, indirect=True)


def _item_hosts(item: pytest.Item, state: _Otto) -> list[Host]:
    """The lab hosts an item is bound to: its ``host`` parameter, or its ``hosts`` list."""
    callspec = getattr(item, "callspec", None)
    fixturenames = getattr(item, "fixturenames", ())
    if callspec is not None and "host" in fixturenames:
        host_id = callspec.params.get("host")
        if isinstance(host_id, str) and host_id in state.lab:
            return [state.lab[host_id]]
    if "hosts" in fixturenames:
        return state.selected_for(item)[0]
    return []


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the xdist_group marks
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Give each host test case the properties ``otto_lab`` and ``otto_host``; share the loop.

    User properties reach every report: JUnit XML and any reporting plugin.
    """
    state = config.stash.get(_STATE, None)
    if state is None:
        return
    bound = [(item, _item_hosts(item, state)) for item in items]
    for item, item_hosts in bound:
        if item_hosts:
            item.user_properties.append(("otto_lab", state.lab.name))
        for host in item_hosts:
            item.user_properties.append(("otto_host", host.id))
    if config.getoption("loadgroup", False) or getattr(config.option, "dist", "no") == "loadgroup":
        _group_single_holder_hosts(state, bound)
    _share_event_loop(config, state, items)


def _group_single_holder_hosts(state: _Otto, bound: list[tuple[pytest.Item, list[Host]]]) -> None:
    """Keep every test that may reach a console host on that host's xdist worker.

    A serial line (or a console server's port) takes one holder at a time. A test
    that uses ``hosts`` or the whole ``lab`` would otherwise run on any worker and
    find the line held by the worker of that host's own tests, or take it from
    them. Such a test joins the console host's group; consoles that one test uses
    together share a group, named after the first of them in lab order.
    """
    order = {h.id: i for i, h in enumerate(state.lab)}
    whole_lab = [h for h in state.lab if h.single_holder]
    leader: dict[str, str] = {h.id: h.id for h in whole_lab}

    def find(host_id: str) -> str:
        while leader[host_id] != host_id:
            host_id = leader[host_id]
        return host_id

    touched: list[tuple[pytest.Item, list[str]]] = []
    for item, item_hosts in bound:
        if "lab" in getattr(item, "fixturenames", ()):
            consoles = [h.id for h in whole_lab]
        else:
            consoles = [h.id for h in item_hosts if h.single_holder]
        if not consoles:
            continue
        touched.append((item, consoles))
        roots = sorted({find(c) for c in consoles}, key=order.__getitem__)
        for root in roots[1:]:
            leader[root] = roots[0]
    for item, consoles in touched:
        _set_xdist_group(item, find(consoles[0]))
    for item, item_hosts in bound:  # a test that pins its host still runs on that host's worker
        pinned = item_hosts if "host" in getattr(item, "fixturenames", ()) else []
        if len(pinned) == 1 and item.get_closest_marker("xdist_group") is None:
            _set_xdist_group(item, pinned[0].id)


def _set_xdist_group(item: pytest.Item, group: str) -> None:
    """Make ``group`` the item's only xdist group: pytest-xdist joins the names of all."""
    item.own_markers[:] = [m for m in item.own_markers if m.name != "xdist_group"]
    item.add_marker(pytest.mark.xdist_group(group))


@pytest.hookimpl(tryfirst=True)
def pytest_runtestloop(session: pytest.Session) -> None:
    """Pre-flight: connect every host the collected tests use, once and concurrently.

    Skipped on xdist workers, which connect each host when its first test needs it
    (still once: a host's tests all run on one worker), and on the controller, which
    runs no test.
    """
    config = session.config
    state = config.stash.get(_STATE, None)
    if (
        state is None
        or config.option.collectonly
        or hasattr(config, "workerinput")
        or (session.testsfailed and not config.option.continue_on_collection_errors)
    ):
        return
    hosts: dict[str, Host] = {}
    for item in session.items:
        for host in _item_hosts(item, state):
            hosts.setdefault(host.id, host)
    state.connect(hosts.values())


# -- fixtures ---------------------------------------------------------------------------


class OttoFixtures:
    """The fixtures ``lab``, ``host``, ``hosts`` and ``local_host``.

    A plugin object registered in ``pytest_configure``, i.e. after every entry-point
    plugin, so these win over fixtures of the same name from other plugins (testinfra
    also has a ``host`` fixture); a conftest fixture still overrides them.
    """

    @pytest.fixture(scope="session")
    def lab(self, request: pytest.FixtureRequest) -> Lab:
        """The lab of this run (``--lab``; by default one local host ``local``), closed at the end.

        Use it for tests that need several hosts at once: ``lab.select(tags=["router"])``.
        """
        return _state(request.config).lab

    @pytest.fixture(scope="session")
    def host(self, request: pytest.FixtureRequest) -> Host:
        """The host this test node runs on (one node per selected host: ``test_x[host_id]``).

        Session-scoped: its connection and shell stay open for the whole run. A host that
        could not be connected errors its nodes with the cause.
        """
        state = _state(request.config)
        host_id = getattr(request, "param", None)
        if not isinstance(host_id, str) or host_id not in state.lab:
            pytest.fail(
                f"pytest-otto: the host fixture got {host_id!r}, not a host id of lab {state.lab.name!r}",
                pytrace=False,
            )
        selected = state.lab[host_id]
        if state.pattern is not None and selected not in state.selected:
            # a test that pins its host meets the job's selection too
            pytest.skip(f"host {host_id!r} is not selected by --host-pattern {state.pattern!r}")
        state.require([selected])
        return selected

    @pytest.fixture
    def hosts(self, request: pytest.FixtureRequest) -> list[Host]:
        """All selected hosts this test may use (``otto_hosts`` applies), connected; one node.

        For tests that need several hosts at once; skipped when none is selected.
        """
        state = _state(request.config)
        selected, why_none = state.selected_for(request.node)
        if not selected:
            pytest.skip(why_none)
        state.require(selected)
        return selected

    @pytest.fixture(scope="session")
    def local_host(self, request: pytest.FixtureRequest) -> LocalHost:
        """The machine pytest runs on: one persistent local shell for the whole run."""
        state = _state(request.config)
        if state.local is None:
            state.local = LocalHost("local")
        return state.local


# -- reports ----------------------------------------------------------------------------


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Start the test with a clean watch: what ran between tests belongs to none of them."""
    state = item.config.stash.get(_STATE, None)
    if state is not None:
        state.watch.take()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[Any]:
    """Add what each host ran during this phase as a report section, one per host.

    The hosts are the ones the test used, however it reached them (its ``host``,
    ``hosts``, ``local_host``, the ``lab``, a host it made itself), in lab order;
    finding them costs nothing per idle host. pytest shows the sections of a failing
    test, and of every test with ``-rA``. Entries are masked by the host, so no
    secret reaches the report.
    """
    state = item.config.stash.get(_STATE, None)
    if state is not None:
        sections: dict[str, list[str]] = {}
        for _transcript, entries in state.watch.take():
            for entry in entries:
                sections.setdefault(entry.host_id, []).append(entry.format())
        for host_id in sorted(sections, key=state.report_order):
            item.add_report_section(call.when, f"otto transcript {host_id}", "\n".join(sections[host_id]))
    return (yield)
