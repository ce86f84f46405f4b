"""The run of one pytest session: options, loading the lab, the header, pre-flight, closing.

- ``pytest_sessionstart`` loads the lab (``--lab`` > ``$OTTO_LAB`` > ini ``otto_lab``)
  and checks ``--host-pattern``; mistakes are usage errors (exit code 4) before any test.
- ``pytest_runtestloop`` connects every host the run needs once, concurrently (pre-flight);
  an unreachable host errors its own nodes, the others run.
- ``pytest_sessionfinish`` closes every host.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ..hosts.base import Host
from ..hosts.local import LocalHost
from ..lab import LabError, set_active_lab
from ..selection import (
    HOST_PATTERN_HELP,
    OTTO_LAB_ENV,
    TAGS_HELP,
    LabChoice,
    choose_lab,
    find_ini_file,
    list_ids,
    open_lab,
    parse_tags,
    select_hosts,
)
from .host_fixture import testinfra_hosts_option
from .state import STATE, OttoRun, find_state, item_hosts

__all__ = ["OTTO_LAB_ENV", "add_options", "warn_if_lab_path_chose_rootdir"]


def add_options(parser: pytest.Parser) -> None:
    """``--lab``, ``--host-pattern``, ``--tags`` and the ``otto_lab`` ini option.

    ``--host-pattern`` and ``--tags`` are the ``otto`` command's ``-p`` and ``--tags``:
    the same selection (`pytest_otto.selection.select_hosts`) with the same help text.
    """
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
        help=HOST_PATTERN_HELP,
    )
    group.addoption(
        "--tags",
        dest="otto_tags",
        metavar="T,...",
        action="append",
        default=None,
        help=TAGS_HELP,
    )
    parser.addini(
        "otto_lab",
        f"Lab file used when neither --lab nor ${OTTO_LAB_ENV} is given (relative to the ini file).",
        default="",
    )


def warn_if_lab_path_chose_rootdir(config: pytest.Config) -> None:
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
    project_ini = find_ini_file(here)
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


def _lab_choice(config: pytest.Config) -> LabChoice:
    """The lab file to load and where its name came from (option > env > ini), as ``otto`` does."""
    ini = str(config.getini("otto_lab") or "")
    base = config.inipath.parent if config.inipath else config.rootpath
    where = config.invocation_params.dir
    return choose_lab(config.option.otto_lab, cwd=where, ini=(ini, base) if ini else None)


def owns_host_fixture(config: pytest.Config) -> bool:
    """Whether ``host`` is pytest-otto's: unless testinfra's ``--hosts`` is given and no lab."""
    return testinfra_hosts_option(config) is None or _lab_choice(config).path is not None


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    """Load the lab and apply ``--host-pattern`` and ``--tags``; any mistake is a usage error (exit 4)."""
    config = session.config
    choice = _lab_choice(config)
    testinfra_hosts = testinfra_hosts_option(config)
    if testinfra_hosts is not None and choice.path is not None:
        raise pytest.UsageError(
            f"pytest-otto: both a lab ({choice.path}, from {choice.source}) and pytest-testinfra's "
            f"--hosts={testinfra_hosts} are given, so one of them would be ignored: the host fixture "
            "is pytest-otto's with a lab, testinfra's with --hosts and no lab. Run the two suites "
            "separately (see docs/testinfra.md)."
        )
    pattern = config.option.otto_host_pattern
    tags = parse_tags(config.option.otto_tags)
    try:
        lab = open_lab(choice)
        selected = select_hosts(lab, pattern, tags)
    except LabError as exc:
        raise pytest.UsageError(f"pytest-otto: {exc}") from None
    source = choice.source
    local = next((h for h in lab.hosts if h.id == "local" and isinstance(h, LocalHost)), None)
    state = config.stash[STATE] = OttoRun(lab, source, pattern, selected, local, tags=tags)
    state.watch.open()
    set_active_lab(lab)


def pytest_report_header(config: pytest.Config) -> list[str] | None:
    """The lab (name, file) and the selected hosts."""
    state = find_state(config)
    if state is None:
        return None
    lab = state.lab
    if state.source == "default":
        lines = [f"otto lab: {lab.name} (no --lab, ${OTTO_LAB_ENV} or otto_lab: the local machine)"]
    else:
        lines = [f"otto lab: {lab.name} ({lab.path}, from {state.source})"]
    count = f"{len(state.selected)} of {len(lab.hosts)}"
    if state.selection is not None:
        count += f", {state.selection}"
    lines.append(f"otto hosts ({count}): {list_ids(state.selected)}")
    if not owns_host_fixture(config):
        lines.append("otto host fixture: pytest-testinfra's (--hosts given, no lab); lab, hosts: ours")
    return lines


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Close every host of the lab (and the local host): shells and connections end here."""
    state = find_state(session.config)
    if state is None:
        return
    try:
        state.lab.close_sync()
        if state.local is not None and state.local not in state.lab.hosts:
            state.local.close_sync()
    finally:
        state.watch.close()
        set_active_lab(None)


@pytest.hookimpl(tryfirst=True)
def pytest_runtestloop(session: pytest.Session) -> None:
    """Pre-flight: connect every host the collected tests use, once and concurrently.

    Skipped on xdist workers, which connect each host when its first test needs it
    (still once: a host's tests all run on one worker), and on the controller, which
    runs no test.
    """
    config = session.config
    state = find_state(config)
    if (
        state is None
        or config.option.collectonly
        or hasattr(config, "workerinput")
        or (session.testsfailed and not config.option.continue_on_collection_errors)
    ):
        return
    hosts: dict[str, Host] = {}
    for item in session.items:
        for host in item_hosts(item, state):
            hosts.setdefault(host.id, host)
    state.connect(hosts.values())
