"""The transports and per-host sections a lab file may name: one table read by everything.

Each transport is a name (``transport = "ssh"`` in a lab file), a typed config class
(the keys a host table of that transport accepts, their types and their defaults) and
a host class (what `pytest_otto.lab` builds from the config). The lab loader
(`pytest_otto.config`), the lab (`pytest_otto.lab`) and the lazy names of
``pytest_otto`` and ``pytest_otto.hosts`` all read this table, so a new transport is
one `register_transport` line here, and a new per-host section (``[hosts.<id>.power]``)
one `register_section` line.

Classes and parsers are named as ``"module:attribute"`` and imported on first use:
loading a lab of local hosts never imports asyncssh, and this module imports nothing
of the package, so every layer may read it.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from .config import HostConfig
    from .hosts.base import Host

__all__ = [
    "SectionEntry",
    "TransportEntry",
    "register_section",
    "register_transport",
    "section",
    "sections",
    "transport",
    "transports",
]


def _load(reference: str) -> Any:
    """The attribute a ``"module:attribute"`` reference names, imported now."""
    module, _, name = reference.partition(":")
    return getattr(importlib.import_module(module), name)


@dataclass(frozen=True)
class TransportEntry:
    """One transport: its lab-file name, its config class and its host class."""

    name: str
    #: ``"module:Class"`` of the `HostConfig` subclass a host table is parsed into.
    config: str
    #: ``"module:Class"`` of the `Host` subclass built from that config (``from_config``).
    host: str

    @property
    def host_class_name(self) -> str:
        """The host class's name, as ``pytest_otto`` exports it (``RemoteHost``)."""
        return self.host.partition(":")[2]

    @property
    def host_module(self) -> str:
        """The module that defines the host class."""
        return self.host.partition(":")[0]

    def config_class(self) -> type[HostConfig]:
        """The typed config class (imported now)."""
        return cast("type[HostConfig]", _load(self.config))

    def host_class(self) -> type[Host]:
        """The host class (imported now: this may load asyncssh)."""
        return cast("type[Host]", _load(self.host))

    def lab_keys(self) -> tuple[str, ...]:
        """The keys a host table of this transport accepts, besides ``transport`` and sections."""
        return self.config_class().lab_keys()

    def defaults(self) -> dict[str, Any]:
        """What each key holds when neither the host table nor ``[defaults]`` sets it."""
        values: dict[str, Any] = {}
        for f in dataclasses.fields(self.config_class()):
            if f.name in self.lab_keys() and f.default is not dataclasses.MISSING:
                values[f.name] = f.default
            elif f.name in self.lab_keys() and f.default_factory is not dataclasses.MISSING:
                values[f.name] = f.default_factory()
        return values


@dataclass(frozen=True)
class SectionEntry:
    """A per-host key parsed by its own module: a table (``[hosts.<id>.power]``) or any
    value (``lease = "bench-a"``), also allowed in ``[defaults]``.

    ``parser`` names ``parse(value) -> object``: it checks the value and returns the
    typed value kept in ``HostConfig.sections[name]``; it raises ``ValueError`` or
    ``TypeError`` with the reason, and the loader adds the file, the host and the key.
    A value with a ``to_toml()`` method is written back through it by ``Lab.dump``.
    """

    name: str
    parser: str
    #: The transports whose hosts may have it; empty: every transport.
    transports: tuple[str, ...] = ()

    def parse(self, value: object) -> object:
        """The section's typed value (the parser, imported now)."""
        parse = cast("Callable[[object], object]", _load(self.parser))
        return parse(value)

    def allowed_for(self, transport: str) -> bool:
        """Whether a host of ``transport`` may have this section."""
        return not self.transports or transport in self.transports


_transports: dict[str, TransportEntry] = {}
_sections: dict[str, SectionEntry] = {}


def register_transport(name: str, *, config: str, host: str) -> TransportEntry:
    """Make ``transport = name`` valid in a lab file (``"module:Class"`` references)."""
    entry = _transports[name] = TransportEntry(name, config, host)
    return entry


def register_section(name: str, *, parser: str, transports: tuple[str, ...] = ()) -> SectionEntry:
    """Make ``[hosts.<id>.name]`` valid in a lab file, parsed by ``parser`` (``"module:function"``)."""
    entry = _sections[name] = SectionEntry(name, parser, tuple(transports))
    return entry


def transports() -> list[TransportEntry]:
    """Every registered transport, in registration order (the documentation's order)."""
    return list(_transports.values())


def transport(name: str) -> TransportEntry | None:
    """The transport called ``name``, or None."""
    return _transports.get(name)


def sections() -> list[SectionEntry]:
    """Every registered per-host section."""
    return list(_sections.values())


def section(name: str) -> SectionEntry | None:
    """The section called ``name``, or None."""
    return _sections.get(name)


def host_class_module(class_name: str) -> str | None:
    """The module defining the host class exported as ``class_name`` (for lazy imports)."""
    for entry in _transports.values():
        if entry.host_class_name == class_name:
            return entry.host_module
    return None


# -- the built-in transports (ssh first: it is the default) -------------------------------

register_transport("ssh", config="pytest_otto.config:SshConfig", host="pytest_otto.hosts.ssh:RemoteHost")
register_transport(
    "telnet", config="pytest_otto.config:TelnetConfig", host="pytest_otto.hosts.console:TelnetHost"
)
register_transport(
    "serial", config="pytest_otto.config:SerialConfig", host="pytest_otto.hosts.console:SerialHost"
)
register_transport("tcp", config="pytest_otto.config:TcpConfig", host="pytest_otto.hosts.console:TcpHost")
register_transport("local", config="pytest_otto.config:LocalConfig", host="pytest_otto.hosts.local:LocalHost")

# -- boards: power control, the bootloader, recovery in a pytest run ------------------------

register_section("power", parser="pytest_otto.power.config:parse_power_section")
register_section(
    "bootloader",
    parser="pytest_otto.bootloader:parse_bootloader_section",
    transports=("telnet", "serial", "tcp"),
)
register_section("recover", parser="pytest_otto.hosts.board:parse_recover")

# -- the built-in per-host sections ---------------------------------------------------------

#: ``lease = "board-17"`` / ``lease = false``: the device a host is leased as (docs/leases.md).
register_section("lease", parser="pytest_otto.leases.settings:parse_lease")
