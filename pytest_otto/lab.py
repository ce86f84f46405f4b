"""The lab: host objects built from a lab file, selection, and the fan-out helpers.

``Lab`` turns a `LabConfig` into hosts through the transport registry
(`pytest_otto.registry`), so this module never imports the SSH or console code until
a lab needs it. The lab helpers (``all_hosts``, ``do_for_all_hosts``,
``run_on_all_hosts``, and their blocking twins) exist as `Lab` methods and as module
functions acting on the active lab: the one the pytest plugin loaded, else the file
named by ``$OTTO_LAB``, else one local host. How one call reaches many hosts at once
is `pytest_otto.fanout`.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import loop, registry
from .config import HostConfig, LabConfig, LabError, LocalConfig, load_lab_config
from .fanout import fan_out

if TYPE_CHECKING:
    from .hosts.base import Host
    from .leases import Holder, LeaseInfo, LeaseSet

__all__ = [
    "Lab",
    "LabError",
    "all_hosts",
    "build_host",
    "default_lab",
    "do_for_all_hosts",
    "do_for_all_hosts_sync",
    "get_active_lab",
    "get_host",
    "load_lab",
    "register_transport",
    "run_on_all_hosts",
    "run_on_all_hosts_sync",
    "set_active_lab",
]

log = logging.getLogger("pytest_otto")

#: transport name -> factory(config, lab), replacing the registry's host class for it.
HostFactory = Callable[[HostConfig, "Lab"], "Host"]
_factories: dict[str, HostFactory] = {}

Pattern = str | re.Pattern[str] | None


def register_transport(name: str, factory: HostFactory) -> None:
    """Build the hosts of ``transport = name`` with ``factory(config, lab)`` instead of the
    registry's host class (tests, a lab's own kind of host; see `pytest_otto.registry`)."""
    _factories[name] = factory


def build_host(config: HostConfig, lab: Lab) -> Host:
    """Build the (unconnected) host for one lab file entry.

    The host class of a transport (`pytest_otto.registry`) is imported on first need,
    so a lab of local hosts never loads asyncssh. A missing transport is a `LabError`
    naming the host.
    """
    host = _build(config, lab)
    if config.sections:
        from .hosts.board import configure_board  # power, bootloader, recover

        configure_board(host, config, lab)
    return host


def _build(config: HostConfig, lab: Lab) -> Host:
    factory = _factories.get(config.transport)
    if factory is not None:
        return factory(config, lab)
    entry = registry.transport(config.transport)
    if entry is None:
        raise LabError(
            f"transport {config.transport!r} is not registered",
            path=lab.path,
            host_id=config.id,
            key="transport",
        )
    try:
        host_class = entry.host_class()
    except ImportError as exc:
        raise LabError(
            f"transport {config.transport!r} is not available: cannot import {entry.host_module} ({exc})",
            path=lab.path,
            host_id=config.id,
            key="transport",
        ) from exc
    return host_class.from_config(config, lab)


def _compile(pattern: Pattern) -> re.Pattern[str] | None:
    if pattern is None or isinstance(pattern, re.Pattern):
        return pattern
    if isinstance(pattern, str):
        return re.compile(pattern)
    raise TypeError(f"pattern must be a str or a compiled regex, not {type(pattern).__name__}")


class Lab:
    """The hosts of one lab file, in file order, with lookup, selection and fan-out.

    Build one with `load_lab` or `Lab.from_config`; `Lab(hosts)` wraps host
    objects made in code (tests, scripts).
    """

    def __init__(
        self,
        hosts: Iterable[Host],
        *,
        name: str = "lab",
        path: str | os.PathLike[str] | None = None,
        config: LabConfig | None = None,
    ) -> None:
        self.name = name
        self.path = Path(path) if path is not None else None
        self.config = config
        self.hosts: list[Host] = []
        self._by_id: dict[str, Host] = {}
        for host in hosts:
            if host.id in self._by_id:
                raise ValueError(f"two hosts with id {host.id!r} in lab {name!r}")
            self.hosts.append(host)
            self._by_id[host.id] = host

    @classmethod
    def from_config(cls, config: LabConfig) -> Lab:
        """Build every host of ``config`` (unconnected) through its transport's factory."""
        lab = cls((), name=config.name, path=config.path, config=config)
        by_id = {cfg.id: cfg for cfg in config.hosts}

        def build(cfg: HostConfig) -> None:
            # A hop is built before the hosts behind it, so their factory can find it
            # (the loader already refused cycles and unknown hops).
            if cfg.id in lab._by_id:
                return
            hop = getattr(cfg, "hop", None)
            if hop is not None and hop in by_id:
                build(by_id[hop])
            lab._by_id[cfg.id] = build_host(cfg, lab)

        for cfg in config.hosts:
            build(cfg)
        lab.hosts = [lab._by_id[cfg.id] for cfg in config.hosts]
        return lab

    def __repr__(self) -> str:
        return f"<Lab {self.name!r}: {', '.join(self._by_id) or 'no hosts'}>"

    def __iter__(self) -> Iterator[Host]:
        return iter(list(self.hosts))

    def __len__(self) -> int:
        return len(self.hosts)

    def __contains__(self, host_id: object) -> bool:
        return host_id in self._by_id

    @property
    def ids(self) -> list[str]:
        """Host ids in lab order."""
        return [host.id for host in self.hosts]

    def __getitem__(self, host_id: str) -> Host:
        return self.get(host_id)

    def get(self, host_id: str) -> Host:
        """The host called ``host_id``; ``KeyError`` listing the lab's ids."""
        try:
            return self._by_id[host_id]
        except KeyError:
            known = ", ".join(self._by_id) or "(none)"
            raise KeyError(f"no host {host_id!r} in lab {self.name!r}; hosts: {known}") from None

    def select(self, pattern: Pattern = None, tags: str | Iterable[str] | None = None) -> list[Host]:
        """Hosts in lab order whose id matches ``pattern`` (``re.search``) and that have all ``tags``."""
        regex = _compile(pattern)
        wanted = {tags} if isinstance(tags, str) else set(tags or ())
        return [
            host
            for host in self.hosts
            if (regex is None or regex.search(host.id)) and wanted.issubset(getattr(host, "tags", ()))
        ]

    def all_hosts(self, pattern: Pattern = None) -> Iterator[Host]:
        """Yield the hosts in lab order, filtered by ``pattern.search(host.id)`` (B24)."""
        yield from self.select(pattern)

    async def do_for_all_hosts(
        self,
        fn: Callable[..., Any],
        *args: Any,
        pattern: Pattern = None,
        concurrent: bool = True,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """Call ``fn(host, *args, **kwargs)`` on each selected host (B25).

        Returns ``{host.id: result or exception}`` in lab order; one host's
        exception never cancels the others. ``concurrent=False`` runs one host at
        a time. An unbound host method (``RemoteHost.put``) runs each host's own
        method of that name. The caller's cancellation and Ctrl-C propagate.
        """
        return await fan_out(self.select(pattern), fn, args, kwargs, concurrent=concurrent)

    def do_for_all_hosts_sync(
        self,
        fn: Callable[..., Any],
        *args: Any,
        pattern: Pattern = None,
        concurrent: bool = True,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """Blocking twin of `do_for_all_hosts`.

        A plain ``fn`` runs in a thread of its own for each host, so it may block and
        use blocking twins (``lambda h: h.run_sync("uptime")``) while the hosts run at once.
        """
        work = fan_out(self.select(pattern), fn, args, kwargs, concurrent=concurrent, in_thread=True)
        return loop.wait(work)

    async def run_on_all_hosts(
        self,
        cmds: str | Sequence[str],
        pattern: Pattern = None,
        concurrent: bool = True,
        timeout: float | None = None,
    ) -> dict[str, Any]:
        """``host.run(cmds)`` on each selected host: ``{host.id: RunResult or exception}`` (B26).

        ``timeout=None`` uses each host's own ``command_timeout``.
        """
        kwargs: dict[str, Any] = {} if timeout is None else {"timeout": timeout}
        return await fan_out(self.select(pattern), _run, (cmds,), kwargs, concurrent=concurrent)

    def run_on_all_hosts_sync(
        self,
        cmds: str | Sequence[str],
        pattern: Pattern = None,
        concurrent: bool = True,
        timeout: float | None = None,
    ) -> dict[str, Any]:
        """Blocking twin of `run_on_all_hosts`."""
        return loop.wait(self.run_on_all_hosts(cmds, pattern=pattern, concurrent=concurrent, timeout=timeout))

    async def connect_all(self, pattern: Pattern = None, concurrent: bool = True) -> dict[str, Any]:
        """Connect the selected hosts, all at once: ``{host.id: None or exception}``."""
        return await fan_out(self.select(pattern), _connect, concurrent=concurrent)

    def connect_all_sync(self, pattern: Pattern = None, concurrent: bool = True) -> dict[str, Any]:
        """Blocking twin of `connect_all`."""
        return loop.wait(self.connect_all(pattern, concurrent))

    async def close(self) -> None:
        """Close every host (concurrently); errors are logged, not raised."""
        results = await fan_out(self.hosts, _close)
        for host_id, result in results.items():
            if isinstance(result, BaseException):
                log.warning("%s: close failed: %s", host_id, result)

    def close_sync(self) -> None:
        """Blocking twin of `close`."""
        loop.wait(self.close())

    def lease(
        self, hosts: Iterable[Host | str] | None = None, *, wait: float | None = None, any: int | None = None
    ) -> LeaseSet:
        """The leases of ``hosts``' devices (default: every host): ``async with`` or ``with``.

        Waits up to ``wait`` seconds (default: the lab's ``lease_wait``), then raises
        `pytest_otto.leases.LeaseError` naming host, device and holder. ``any=N``
        takes any N free devices of them. See ``docs/leases.md``.
        """
        from .leases import lease_set

        return lease_set(self, hosts, wait=wait, any=any)

    async def leases(self) -> list[LeaseInfo]:
        """Who holds which device now, in this lab's lease store (everyone's leases)."""
        from .leases import lab_leases

        return await lab_leases(self)

    def leases_sync(self) -> list[LeaseInfo]:
        """Blocking twin of `leases`."""
        from .leases import lab_leases, thread

        return thread.run(lab_leases(self))

    async def break_lease(self, device: str) -> Holder | None:
        """Remove a stuck lease on ``device``, whoever holds it; returns that holder."""
        from .leases import break_lease

        return await break_lease(self, device)

    def break_lease_sync(self, device: str) -> Holder | None:
        """Blocking twin of `break_lease`."""
        from .leases import break_lease, thread

        return thread.run(break_lease(self, device))

    def dump(self, path: str | os.PathLike[str] | None = None) -> str:
        """The lab as TOML text (written to ``path`` when given).

        Loading the text gives the same hosts: secrets stay ``{ env = ... }``
        references, ``[defaults]`` stays a table, implied values stay implicit.
        """
        import tomli_w

        if self.config is None:
            raise ValueError(f"lab {self.name!r} was not built from a lab file; there is nothing to dump")
        target = Path(path) if path is not None else None
        base = target.parent.resolve() if target is not None else None
        self.config.name = self.name
        text = tomli_w.dumps(self.config.to_toml(base))
        if target is not None:
            target.write_text(text, encoding="utf-8")
        return text


async def _run(host: Any, cmds: str | Sequence[str], **kwargs: Any) -> Any:
    return await host.run(cmds, **kwargs)


async def _connect(host: Any) -> None:
    await host.connect()


async def _close(host: Any) -> None:
    await host.close()


def load_lab(path: str | os.PathLike[str]) -> Lab:
    """Load, validate and build the lab file at ``path`` (`LabError` on mistakes)."""
    return Lab.from_config(load_lab_config(path))


def default_lab() -> Lab:
    """The lab used without a lab file: one local host, id ``local``."""
    return Lab.from_config(LabConfig(name="local", hosts=[LocalConfig(id="local")]))


_active_lock = threading.Lock()
_active: Lab | None = None
_env_lab: tuple[str, Lab] | None = None
_default: Lab | None = None


def set_active_lab(lab: Lab | None) -> None:
    """Make ``lab`` the one the module helpers act on (the pytest plugin does this)."""
    global _active
    with _active_lock:
        _active = lab


def get_active_lab() -> Lab:
    """The lab set by `set_active_lab`, else ``$OTTO_LAB``'s file (loaded once), else `default_lab`."""
    global _env_lab, _default
    with _active_lock:
        if _active is not None:
            return _active
        env_path = os.environ.get("OTTO_LAB")
        if env_path:
            if _env_lab is None or _env_lab[0] != env_path:
                _env_lab = (env_path, load_lab(env_path))
            return _env_lab[1]
        if _default is None:
            _default = default_lab()
        return _default


def all_hosts(pattern: Pattern = None) -> Iterator[Host]:
    """Yield the active lab's hosts in lab order, filtered by ``pattern`` (B24)."""
    return get_active_lab().all_hosts(pattern)


def get_host(host_id: str) -> Host:
    """The active lab's host called ``host_id``; ``KeyError`` listing the ids."""
    return get_active_lab().get(host_id)


async def do_for_all_hosts(
    fn: Callable[..., Any], *args: Any, pattern: Pattern = None, concurrent: bool = True, **kwargs: Any
) -> dict[str, Any]:
    """`Lab.do_for_all_hosts` on the active lab (B25)."""
    lab = get_active_lab()
    return await lab.do_for_all_hosts(fn, *args, pattern=pattern, concurrent=concurrent, **kwargs)


async def run_on_all_hosts(
    cmds: str | Sequence[str],
    pattern: Pattern = None,
    concurrent: bool = True,
    timeout: float | None = None,
) -> dict[str, Any]:
    """`Lab.run_on_all_hosts` on the active lab (B26)."""
    lab = get_active_lab()
    return await lab.run_on_all_hosts(cmds, pattern=pattern, concurrent=concurrent, timeout=timeout)


def do_for_all_hosts_sync(
    fn: Callable[..., Any], *args: Any, pattern: Pattern = None, concurrent: bool = True, **kwargs: Any
) -> dict[str, Any]:
    """Blocking twin of `do_for_all_hosts` (see `Lab.do_for_all_hosts_sync`)."""
    lab = get_active_lab()
    return lab.do_for_all_hosts_sync(fn, *args, pattern=pattern, concurrent=concurrent, **kwargs)


def run_on_all_hosts_sync(
    cmds: str | Sequence[str],
    pattern: Pattern = None,
    concurrent: bool = True,
    timeout: float | None = None,
) -> dict[str, Any]:
    """Blocking twin of `run_on_all_hosts`."""
    lab = get_active_lab()
    return lab.run_on_all_hosts_sync(cmds, pattern=pattern, concurrent=concurrent, timeout=timeout)
