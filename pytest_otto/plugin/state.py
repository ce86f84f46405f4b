"""What the plugin holds for one pytest run, and the small helpers its parts share."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import pytest

from .. import loop
from ..hosts.base import Host
from ..hosts.local import LocalHost
from ..lab import Lab, LabError
from ..selection import selection_text
from ..transcript import TranscriptWatch

__all__ = ["OTTO_FIXTURES", "STATE", "OttoRun", "find_state", "get_state", "item_hosts"]

#: The fixtures of this plugin: an async test using one of them gets the session's loop.
OTTO_FIXTURES = frozenset({"host", "hosts", "lab", "local_host"})


@dataclass
class OttoRun:
    """What the plugin holds for one pytest run (one per xdist worker)."""

    lab: Lab
    source: str  # where the lab came from, for the header
    pattern: str | None
    selected: list[Host]
    local: LocalHost | None = None
    #: ``--tags``, split (every one of them is required of a selected host).
    tags: list[str] = field(default_factory=list)
    #: host id -> None (connected) or the exception of its one connection attempt.
    connected: dict[str, BaseException | None] = field(default_factory=dict)
    #: Tells which transcripts moved during a test phase (open for the session).
    watch: TranscriptWatch = field(default_factory=TranscriptWatch)
    #: id() of the test functions this plugin marked for pytest-asyncio.
    marked: set[int] = field(default_factory=set)
    _order: dict[str, int] = field(default_factory=dict)

    @property
    def selection(self) -> str | None:
        """``--host-pattern 'x' --tags 'a'`` as given, or None when every host is selected."""
        return selection_text(self.pattern, self.tags)

    def selected_for(self, node: pytest.Item | pytest.Function | Any) -> tuple[list[Host], str]:
        """The selected hosts that ``node``'s ``otto_hosts`` markers allow, and why none if so."""
        hosts = list(self.selected)  # never empty: an empty lab or selection is a usage error
        for mark in node.iter_markers("otto_hosts"):
            pattern, tags = marker_args(mark, node)
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
        verdicts = {verdict(exc) for _, exc in failed}
        if len(failed) == 1:
            host_id, exc = failed[0]
            what = f"host {host_id!r} is {verdict(exc)}: {describe(exc)}"
        elif failed:
            names = ", ".join(repr(host_id) for host_id, _ in failed)
            causes = "; ".join(f"{host_id}: {describe(exc)}" for host_id, exc in failed)
            how = f"are {verdicts.pop()}" if len(verdicts) == 1 else "cannot be used"
            what = f"hosts {names} {how}: {causes}"
        else:
            return
        pytest.fail(f"pytest-otto: {what} (one connection attempt per session)", pytrace=False)

    def report_order(self, host_id: str) -> int:
        """Where a host's transcript section goes: lab order, then hosts from elsewhere."""
        if len(self._order) != len(self.lab.hosts):
            self._order = {h.id: i for i, h in enumerate(self.lab.hosts)}
        return self._order.get(host_id, len(self._order))


STATE = pytest.StashKey[OttoRun]()


def get_state(config: pytest.Config) -> OttoRun:
    try:
        return config.stash[STATE]
    except KeyError:
        raise RuntimeError(
            "pytest-otto: the lab is not loaded yet (fixtures need a running session)"
        ) from None


def verdict(exc: BaseException | None) -> str:
    """ "misconfigured" for a mistake in the lab (a missing password variable), else "unreachable"."""
    said = getattr(exc, "verdict", None)  # a busy device: "leased by another run"
    if isinstance(said, str):
        return said
    return "misconfigured" if isinstance(exc, LabError) else "unreachable"


def describe(exc: BaseException | None) -> str:
    """The cause of a failed connection, without the host id the message already has."""
    cause = getattr(exc, "cause", None)
    if isinstance(cause, str) and cause:
        return cause  # HostConnectionError
    if isinstance(exc, LabError):
        return str(exc)  # names the file, the host and the key
    return f"{type(exc).__name__}: {exc}"


def marker_args(mark: pytest.Mark, node: Any) -> tuple[str | None, list[str] | None]:
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


def find_state(config: pytest.Config) -> OttoRun | None:
    """The run's state, or None before the lab is loaded (or when loading failed)."""
    return config.stash.get(STATE, None)


#: The hosts each collected item is bound to, found once (`item_hosts`).
_ITEM_HOSTS = pytest.StashKey[list[Host]]()


def item_hosts(item: pytest.Item, state: OttoRun) -> list[Host]:
    """The lab hosts an item is bound to: its ``host`` parameter, or its ``hosts`` list."""
    found = item.stash.get(_ITEM_HOSTS, None)
    if found is None:
        found = item.stash[_ITEM_HOSTS] = _find_item_hosts(item, state)
    return found


def _find_item_hosts(item: pytest.Item, state: OttoRun) -> list[Host]:
    callspec = getattr(item, "callspec", None)
    fixturenames = getattr(item, "fixturenames", ())
    if callspec is not None and "host" in fixturenames:
        host_id = callspec.params.get("host")
        if isinstance(host_id, str) and host_id in state.lab:
            return [state.lab[host_id]]
    if "hosts" in fixturenames:
        return state.selected_for(item)[0]
    return []
