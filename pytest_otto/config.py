"""The lab file (``lab.toml``) as plain data: parsing, validation, secrets.

Nothing here connects or starts anything, so the plugin can load and check a lab
file before any test runs and report every mistake as a usage error that names the
file, the host id and the key. The contract is docs/lab-file.md; every key is shown
in ``lab.toml.example``.

Each transport has a typed config class (`SshConfig`, `TelnetConfig`, `SerialConfig`,
`LocalConfig`, all `HostConfig`): its fields are the keys a host table of that
transport accepts, each field's metadata names the key's validator (see
`pytest_otto.lab_values`) and its default is the key's built-in value. Which class
a transport uses, and the per-host sections, come from `pytest_otto.registry`.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from . import lab_values, registry
from .errors import LabError
from .lab_values import BadValue, Place, Validator, WrongType, resolve_path, type_name
from .masking import Revealed

__all__ = [
    "DEFAULT_TRANSPORT",
    "HOST_ID_RE",
    "ConsoleConfig",
    "HostConfig",
    "LabConfig",
    "LabError",
    "LocalConfig",
    "Revealed",
    "Secret",
    "SerialConfig",
    "SshConfig",
    "TcpConfig",
    "TelnetConfig",
    "all_host_keys",
    "lab_key",
    "load_lab_config",
    "parse_lab",
]

#: The transport of a host whose table (and ``[defaults]``) names none.
DEFAULT_TRANSPORT = "ssh"

#: Host ids must survive as pytest node ids (``test_x[router1]``) and ``-k`` words.
HOST_ID_RE = re.compile(r"[A-Za-z0-9_.-]+")

HOST_KEY_CHECKS: tuple[str, ...] = ("strict", "accept-new", "off")

_TOP_KEYS = ("lab", "defaults", "hosts")
_LAB_KEYS = ("name", "leases", "lease_ttl", "lease_wait")  # lease keys: pytest_otto.leases.settings
_SECRET_KEYS = ("env",)


def _hint(word: str, choices: object) -> str:
    close = difflib.get_close_matches(word, [str(c) for c in choices], n=1, cutoff=0.6)  # type: ignore[attr-defined]
    return f" (did you mean {close[0]!r}?)" if close else ""


class Secret:
    """A secret value: an environment variable's name, or a literal string.

    The value is read only by `reveal` (at connect time) and never appears in
    ``repr``/``str``, so it cannot leak through logs, reports or tracebacks.
    """

    __slots__ = ("_env", "_value", "path")

    def __init__(self, *, env: str | None = None, value: str | None = None, path: Path | None = None) -> None:
        if (env is None) == (value is None):
            raise ValueError("a Secret needs exactly one of env= or value=")
        self._env = env
        self._value = value
        self.path = path

    @classmethod
    def from_env(cls, name: str) -> Secret:
        """A secret read from environment variable ``name`` when revealed."""
        if not isinstance(name, str) or not name:
            raise ValueError("an environment variable name must be a non-empty str")
        return cls(env=name)

    @classmethod
    def literal(cls, value: str) -> Secret:
        """A secret written in the lab file itself (a plain string)."""
        if not isinstance(value, str):
            raise TypeError("a literal secret must be a str")
        return cls(value=value)

    @property
    def env(self) -> str | None:
        """The environment variable's name, or None for a literal."""
        return self._env

    def reveal(self, host_id: str, key: str) -> Revealed:
        """The value, read now; `LabError` naming host, key and variable if unset."""
        if self._value is not None:
            return Revealed(self._value)
        assert self._env is not None
        value = os.environ.get(self._env)
        if value is None:
            raise LabError(
                f"environment variable {self._env!r} is not set", path=self.path, host_id=host_id, key=key
            )
        return Revealed(value)

    def to_toml(self) -> str | dict[str, str]:
        """What the lab file holds: ``{"env": NAME}`` or the plain string."""
        if self._env is not None:
            return {"env": self._env}
        assert self._value is not None
        return self._value

    def __repr__(self) -> str:
        return f"Secret(env={self._env!r})" if self._env is not None else "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return (self._env, self._value) == (other._env, other._value)

    def __hash__(self) -> int:
        return hash((self._env, self._value))


def _secret(value: object, place: Place) -> Secret:
    """A password: a literal string or ``{ env = "NAME" }``, kept as a `Secret`."""
    if isinstance(value, str):
        return Secret(value=value, path=place.file)
    if not isinstance(value, dict):
        raise WrongType(value, 'a string or { env = "NAME" }')
    for k in value:
        if k not in _SECRET_KEYS:
            raise BadValue(f"unknown key {k!r} in secret table{_hint(k, _SECRET_KEYS)}")
    name = value.get("env")
    if not isinstance(name, str) or not name:
        raise BadValue('a secret table needs env = "VARIABLE_NAME"')
    return Secret(env=name, path=place.file)


def lab_key(check: Validator, required: str = "") -> dict[str, Any]:
    """A config field's metadata making it a lab-file key: its validator, and for a key
    without a default, what a host missing it needs (for the error). A transport's own
    config class declares its keys so: ``port: int = field(default=22,
    metadata=lab_key(lab_values.int_range(1, 65535)))``."""
    return {"check": check, "required": required}


@dataclass(frozen=True, kw_only=True)
class HostConfig:
    """One ``[hosts.<id>]`` table after ``[defaults]`` were merged under it: the keys every
    transport accepts. Each transport's typed subclass adds its own.

    Values are validated and normalised (paths resolved, ports defaulted).
    ``sections`` holds the per-host sections (`pytest_otto.registry.register_section`)
    by name. ``explicit`` holds the keys the host table itself set, and ``raw`` that
    table as written, so `LabConfig.to_toml` writes the file back exactly.
    """

    #: The ``transport`` value this class serves.
    transport: ClassVar[str] = ""

    id: str
    tags: tuple[str, ...] = field(default=(), metadata=lab_key(lab_values.tags))
    vars: dict[str, Any] = field(default_factory=dict, metadata=lab_key(lab_values.table))
    connect_timeout: float = field(default=10.0, metadata=lab_key(lab_values.timeout))
    command_timeout: float = field(default=60.0, metadata=lab_key(lab_values.timeout))
    max_output: int = field(default=256 * 1024 * 1024, metadata=lab_key(lab_values.int_range(1)))
    #: Longest typed line; longer commands go in pieces. None: the host's default
    #: (512 on a terminal, none on pipes); 0: no limit.
    line_limit: int | None = field(default=None, metadata=lab_key(lab_values.line_limit))
    sections: Mapping[str, Any] = field(default_factory=dict)
    explicit: frozenset[str] | None = field(default=None, compare=False, repr=False)
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)
    base: Path | None = field(default=None, compare=False, repr=False)

    @classmethod
    def lab_keys(cls) -> tuple[str, ...]:
        """The lab-file keys of this class: its transport's own first, then the common ones."""
        common = [f.name for f in dataclasses.fields(HostConfig) if "check" in f.metadata]
        own = [f.name for f in dataclasses.fields(cls) if "check" in f.metadata and f.name not in common]
        return (*own, *common)

    def to_toml(self, base: Path | None = None) -> dict[str, Any]:
        """This host's table for a lab file (secrets as references, paths as written).

        Without ``explicit`` (a config built in code), every key that differs from
        its default is written. ``base`` is the folder the file will live in:
        relative paths written elsewhere are made absolute.
        """
        if self.explicit is not None:
            known = ["transport", *self.lab_keys(), *self.sections]
            keys = [k for k in dict.fromkeys([*self.raw, *known]) if k in self.explicit and k in known]
            return {k: self.raw[k] if k in self.sections else self._toml_value(k, base) for k in keys}
        table: dict[str, Any] = {}
        if self.transport != DEFAULT_TRANSPORT:
            table["transport"] = self.transport
        for f in dataclasses.fields(self):
            if "check" in f.metadata and _differs_from_default(f, getattr(self, f.name)):
                table[f.name] = self._toml_value(f.name, base)
        for name, value in self.sections.items():
            table[name] = value.to_toml() if hasattr(value, "to_toml") else value
        return table

    def _toml_value(self, k: str, base: Path | None) -> Any:
        value = getattr(self, k)
        if isinstance(value, Secret):
            return value.to_toml()
        if isinstance(value, Path):
            written = self.raw.get(k)
            if isinstance(written, str) and resolve_path(written, self.base) == value:
                return _path_as_written(written, self.base, base)
            return str(value)
        if isinstance(value, tuple):
            return list(value)
        if isinstance(value, dict):
            return dict(value)
        return value


def _differs_from_default(f: dataclasses.Field[Any], value: object) -> bool:
    if f.default is not dataclasses.MISSING:
        return bool(value != f.default)
    if f.default_factory is not dataclasses.MISSING:
        return bool(value != f.default_factory())
    return True  # a required key is always written


@dataclass(frozen=True, kw_only=True)
class SshConfig(HostConfig):
    """A host reached over SSH (`pytest_otto.RemoteHost`)."""

    transport: ClassVar[str] = "ssh"

    address: str = field(metadata=lab_key(lab_values.text, required="an address (name or IP)"))
    port: int = field(default=22, metadata=lab_key(lab_values.int_range(1, 65535)))
    user: str | None = field(default=None, metadata=lab_key(lab_values.text))
    password: Secret | None = field(default=None, metadata=lab_key(_secret))
    key: Path | None = field(default=None, metadata=lab_key(lab_values.path))
    host_key_check: str = field(
        default="accept-new", metadata=lab_key(lab_values.choice(*HOST_KEY_CHECKS, hint=_hint))
    )
    known_hosts: Path | None = field(default=None, metadata=lab_key(lab_values.path))
    agent: bool = field(default=True, metadata=lab_key(lab_values.boolean))
    #: ~/.ssh/config (true), another file (a path) or none (false); the lab's keys win.
    ssh_config: bool | Path = field(default=True, metadata=lab_key(lab_values.flag_or_path))
    hop: str | None = field(default=None, metadata=lab_key(lab_values.text))
    keepalive_interval: float = field(default=15.0, metadata=lab_key(lab_values.delay))
    pty: bool = field(default=False, metadata=lab_key(lab_values.boolean))


@dataclass(frozen=True, kw_only=True)
class ConsoleConfig(HostConfig):
    """What telnet and serial consoles share: the login."""

    user: str | None = field(default=None, metadata=lab_key(lab_values.text))
    password: Secret | None = field(default=None, metadata=lab_key(_secret))
    login_prompt: str | None = field(default=None, metadata=lab_key(lab_values.regex))
    password_prompt: str | None = field(default=None, metadata=lab_key(lab_values.regex))
    write_delay: float = field(default=0.0, metadata=lab_key(lab_values.delay))


@dataclass(frozen=True, kw_only=True)
class TelnetConfig(ConsoleConfig):
    """A console reached over telnet (`pytest_otto.TelnetHost`)."""

    transport: ClassVar[str] = "telnet"

    address: str = field(metadata=lab_key(lab_values.text, required="an address (name or IP)"))
    port: int = field(default=23, metadata=lab_key(lab_values.int_range(1, 65535)))
    #: The port takes one connection (a serial line behind a console server).
    single_connection: bool = field(default=False, metadata=lab_key(lab_values.boolean))


@dataclass(frozen=True, kw_only=True)
class SerialConfig(ConsoleConfig):
    """A console on a serial port (`pytest_otto.SerialHost`)."""

    transport: ClassVar[str] = "serial"

    device: Path = field(metadata=lab_key(lab_values.path, required="a device (e.g. /dev/ttyUSB0)"))
    baud: int = field(default=115200, metadata=lab_key(lab_values.int_range(1)))
    #: ``none``, ``rtscts`` (hardware) or ``xonxoff`` (software).
    flow_control: str = field(
        default="none", metadata=lab_key(lab_values.choice("none", "rtscts", "xonxoff", hint=_hint))
    )


@dataclass(frozen=True, kw_only=True)
class TcpConfig(ConsoleConfig):
    """A raw TCP console: ser2net raw, QEMU ``-serial tcp:`` (`pytest_otto.TcpHost`)."""

    transport: ClassVar[str] = "tcp"

    address: str = field(metadata=lab_key(lab_values.text, required="an address (name or IP)"))
    port: int = field(metadata=lab_key(lab_values.int_range(1, 65535), required="the console's port"))
    #: Such a port is a serial line behind a socket: one connection at a time.
    single_connection: bool = field(default=True, metadata=lab_key(lab_values.boolean))


@dataclass(frozen=True, kw_only=True)
class LocalConfig(HostConfig):
    """The machine pytest runs on (`pytest_otto.LocalHost`)."""

    transport: ClassVar[str] = "local"

    pty: bool = field(default=False, metadata=lab_key(lab_values.boolean))


def all_host_keys() -> tuple[str, ...]:
    """Every key a host table (or ``[defaults]``) may hold, in documentation order:
    ``transport``, each transport's own keys, the keys every host has, the sections."""
    common = HostConfig.lab_keys()
    keys = ["transport"]
    for entry in registry.transports():
        keys += [k for k in entry.lab_keys() if k not in common]
    return (*dict.fromkeys(keys), *common, *(s.name for s in registry.sections()))


def _validators() -> dict[str, Validator]:
    """Each key's validator (a key several transports share has one kind of value)."""
    found: dict[str, Validator] = {}
    for entry in registry.transports():
        for f in dataclasses.fields(entry.config_class()):
            if "check" in f.metadata:
                found.setdefault(f.name, f.metadata["check"])
    return found


@dataclass
class LabConfig:
    """A whole lab file: ``[lab]``, ``[defaults]`` as written and the hosts in file order.

    ``defaults`` keeps the values as the file wrote them (a relative path stays
    relative), except ``password``, which is a `Secret` so no repr shows it.
    """

    name: str
    path: Path | None = None
    defaults: dict[str, Any] = field(default_factory=dict)
    hosts: list[HostConfig] = field(default_factory=list)
    lab_table: dict[str, Any] = field(default_factory=dict)
    #: The folder relative paths in ``defaults`` were written against (the file's).
    base: Path | None = field(default=None, repr=False, compare=False)

    def host(self, host_id: str) -> HostConfig:
        """The host called ``host_id``; ``KeyError`` listing the known ids."""
        for cfg in self.hosts:
            if cfg.id == host_id:
                return cfg
        raise KeyError(f"no host {host_id!r} in lab {self.name!r}; hosts: {', '.join(self.ids) or '(none)'}")

    @property
    def ids(self) -> list[str]:
        """Host ids in file order."""
        return [cfg.id for cfg in self.hosts]

    def to_toml(self, base: Path | None = None) -> dict[str, Any]:
        """The lab file's data: what `parse_lab` reads back into an equal config."""
        lab = dict(self.lab_table)
        lab["name"] = self.name
        data: dict[str, Any] = {"lab": lab}
        if self.defaults:
            data["defaults"] = {k: self._default_toml(k, v, base) for k, v in self.defaults.items()}
        data["hosts"] = {cfg.id: cfg.to_toml(base) for cfg in self.hosts}
        return data

    def _default_toml(self, key: str, value: Any, base: Path | None) -> Any:
        if isinstance(value, Secret):
            return value.to_toml()
        if _validators().get(key) is lab_values.path and isinstance(value, str):
            return _path_as_written(value, self.base, base)
        return value


def _path_as_written(written: str, origin: Path | None, base: Path | None) -> str:
    """A path the file wrote against ``origin``, for a file in ``base``: as written while
    it still names the same file there, else made absolute."""
    same_folder = base is None or origin is None or origin == base
    if same_folder or Path(written).expanduser().is_absolute():
        return written
    return str(resolve_path(written, origin))


class _Checker:
    """Validation of one key's value, with errors carrying file, host and key."""

    def __init__(self, path: Path | None, host_id: str | None, base: Path | None = None) -> None:
        self.path = path
        self.host_id = host_id
        self.place = Place(path, base)

    def error(self, key: str | None, message: str) -> LabError:
        return LabError(message, path=self.path, host_id=self.host_id, key=key)

    def wrong_type(self, key: str, value: object, expected: str) -> LabError:
        shown = "" if key == "password" else f" {value!r}"
        return self.error(key, f"expected {expected}, got {type_name(value)}{shown}")

    def unknown(self, key: str, known: tuple[str, ...] | list[str], where: str) -> LabError:
        return self.error(key, f"unknown key in {where}{_hint(key, known)}")

    def value(self, key: str, value: Any) -> Any:
        """Check and normalise ``value`` for ``key`` (which transport may have it is checked later)."""
        try:
            if key == "transport":
                return self._transport(value)
            section = registry.section(key)
            if section is not None:
                return section.parse(value)
            return _validators()[key](value, self.place)
        except WrongType as exc:
            raise self.wrong_type(key, exc.value, exc.expected) from None
        except LabError as exc:  # a section's parser may raise one: keep its reason
            raise self.error(key, exc.reason) from None
        except (ValueError, TypeError) as exc:
            raise self.error(key, str(exc)) from None

    @staticmethod
    def _transport(value: object) -> str:
        if not isinstance(value, str):
            raise WrongType(value, "a string")
        names = [entry.name for entry in registry.transports()]
        if value not in names:
            raise BadValue(f"unknown transport {value!r}; one of {', '.join(names)}{_hint(value, names)}")
        return value


def parse_lab(data: str | Mapping[str, Any], path: str | os.PathLike[str] | None = None) -> LabConfig:
    """Parse and validate a lab file's text (or its already-parsed data).

    ``path`` names the file in errors and anchors relative paths (its folder).
    Raises `LabError` for every mistake the contract lists.
    """
    # The parser's frames hold the file's tables, plain-text passwords included, as
    # locals, which ``pytest -l`` prints (and JUnit XML keeps): the error leaves them
    # behind, and pytest hides this frame, whose ``data`` is the whole file.
    __tracebackhide__ = True
    try:
        return _parse_lab(data, path)
    except LabError as exc:
        raise exc.with_traceback(None) from None


def _parse_lab(data: str | Mapping[str, Any], path: str | os.PathLike[str] | None) -> LabConfig:
    file = Path(path) if path is not None else None
    base = file.parent.resolve() if file is not None else None
    top = _Checker(file, None)
    if isinstance(data, str):
        text = data
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            host_id, key = _toml_error_place(text, exc)
            raise LabError(f"invalid TOML: {exc}", path=file, host_id=host_id, key=key) from None
    data = dict(data)
    for k in data:
        if k not in _TOP_KEYS:
            raise top.error(k, f"unknown table at the top level{_hint(k, _TOP_KEYS)}")

    lab_table = data.get("lab", {})
    if not isinstance(lab_table, dict):
        raise top.wrong_type("lab", lab_table, "a table")
    for k in lab_table:
        if k not in _LAB_KEYS:
            raise top.unknown(k, _LAB_KEYS, "[lab]")
    name = lab_table.get("name", file.stem if file is not None else "lab")
    if not isinstance(name, str) or not name:
        raise top.wrong_type("name", name, "a non-empty string")

    defaults_raw = data.get("defaults", {})
    if not isinstance(defaults_raw, dict):
        raise top.wrong_type("defaults", defaults_raw, "a table")
    dcheck = _Checker(file, None, base)
    defaults: dict[str, Any] = {}
    known = all_host_keys()
    for k, v in defaults_raw.items():
        if k not in known:
            raise LabError(f"unknown key in [defaults]{_hint(k, known)}", path=file, key=k)
        try:
            defaults[k] = dcheck.value(k, v)
        except LabError as exc:
            raise LabError(f"in [defaults]: {exc.reason}", path=file, key=k) from None

    hosts_raw = data.get("hosts", {})
    if not isinstance(hosts_raw, dict):
        raise top.wrong_type("hosts", hosts_raw, "a table of [hosts.<id>] tables")
    hosts: list[HostConfig] = []
    for host_id, table in hosts_raw.items():
        hosts.append(_parse_host(host_id, table, defaults, file, base))
    _check_hops(hosts, file)
    return LabConfig(
        name=name,
        path=file,
        defaults={k: defaults[k] if isinstance(defaults[k], Secret) else v for k, v in defaults_raw.items()},
        hosts=hosts,
        lab_table={k: v for k, v in lab_table.items() if k != "name"},
        base=base,
    )


_ERROR_LINE = re.compile(r"at line (\d+), column \d+")
_HOST_HEADER = re.compile(r'\s*\[\s*hosts\s*\.\s*(?:"([^"]*)"|\'([^\']*)\'|([A-Za-z0-9_-]+))')
_ANY_HEADER = re.compile(r"\s*\[")
_KEY_AT_START = re.compile(r'\s*(?:"([^"]*)"|\'([^\']*)\'|([A-Za-z0-9_-]+))\s*=')


def _toml_error_place(text: str, exc: tomllib.TOMLDecodeError) -> tuple[str | None, str | None]:
    """The host table and the key a TOML syntax error sits in, when the text tells.

    ``tomllib`` names only a line and column; a user fixing a lab file wants the host
    and the key too. The host is the ``[hosts.<id>...]`` table the line belongs to,
    the key the one the line assigns (None when the line is not an assignment).
    """
    found = _ERROR_LINE.search(str(exc))
    if found is None:
        return None, None
    lines = text.splitlines()
    number = int(found.group(1))
    if not 1 <= number <= len(lines):
        return None, None
    assigned = _KEY_AT_START.match(lines[number - 1])
    key = next((g for g in assigned.groups() if g is not None), None) if assigned else None
    for line in reversed(lines[:number]):
        header = _HOST_HEADER.match(line)
        if header:
            return next(g for g in header.groups() if g is not None), key
        if _ANY_HEADER.match(line):
            return None, key
    return None, key


def _parse_host(
    host_id: object, table: object, defaults: dict[str, Any], file: Path | None, base: Path | None
) -> HostConfig:
    if not isinstance(host_id, str) or not HOST_ID_RE.fullmatch(host_id):
        raise LabError(
            "a host id may only hold letters, digits, '-', '_' and '.' (it becomes part of test ids)",
            path=file,
            host_id=str(host_id),
        )
    check = _Checker(file, host_id, base)
    if not isinstance(table, dict):
        raise check.error(None, f"[hosts.{host_id}] must be a table, got {type_name(table)}")
    known = all_host_keys()
    for k in table:
        if k not in known:
            raise check.unknown(k, known, f"[hosts.{host_id}]")
    own = {k: check.value(k, v) for k, v in table.items()}
    transport = own.get("transport", defaults.get("transport", DEFAULT_TRANSPORT))
    entry = registry.transport(transport)
    assert entry is not None  # checked as a value
    cls = entry.config_class()
    allowed = cls.lab_keys()
    for k in own:
        _check_allowed(check, k, transport, allowed)
    values: dict[str, Any] = {}
    for k in allowed:
        if k in own:
            values[k] = own[k]
        elif k in defaults and not (k == "hop" and defaults[k] == host_id):
            values[k] = defaults[k]  # a default hop takes every host through it, but itself
    sections = {
        s.name: own[s.name] if s.name in own else defaults[s.name]
        for s in registry.sections()
        if (s.name in own or s.name in defaults) and s.allowed_for(transport)
    }
    for f in dataclasses.fields(cls):
        if f.metadata.get("required") and f.name not in values:
            raise check.error(f.name, f"missing: a {transport} host needs {f.metadata['required']}")
    return cls(id=host_id, **values, sections=sections, explicit=frozenset(table), raw=dict(table), base=base)


def _check_allowed(check: _Checker, key: str, transport: str, allowed: tuple[str, ...]) -> None:
    """A key the host table set must be one its transport has (or a section it may have)."""
    if key == "transport" or key in allowed:
        return
    section = registry.section(key)
    if section is None:
        owners = [e.name for e in registry.transports() if key in e.lab_keys()]
    elif not section.allowed_for(transport):
        owners = list(section.transports)
    else:
        return
    raise check.error(key, f"not valid for transport {transport!r} (only for {', '.join(owners)})")


def _check_hops(hosts: list[HostConfig], file: Path | None) -> None:
    by_id = {cfg.id: cfg for cfg in hosts}
    for cfg in hosts:
        chain = [cfg.id]
        current = cfg
        while isinstance(current, SshConfig) and current.hop is not None:
            hop = current.hop
            target = by_id.get(hop)
            if target is None:
                raise LabError(
                    f"hop to unknown host {hop!r} (chain {' -> '.join([*chain, hop])})"
                    f"{_hint(hop, list(by_id))}",
                    path=file,
                    host_id=current.id,
                    key="hop",
                )
            if target.transport != "ssh":
                raise LabError(
                    f"hop {target.id!r} is a {target.transport} host; a hop must be an ssh host",
                    path=file,
                    host_id=current.id,
                    key="hop",
                )
            if target.id in chain:
                cycle = [*chain[chain.index(target.id) :], target.id]
                raise LabError(f"hop cycle: {' -> '.join(cycle)}", path=file, host_id=target.id, key="hop")
            chain.append(target.id)
            current = target


def load_lab_config(path: str | os.PathLike[str]) -> LabConfig:
    """Read and validate the lab file at ``path`` (`LabError` on any mistake)."""
    file = Path(path)
    return parse_lab(_read_lab_text(file), file)


def _read_lab_text(file: Path) -> str:
    __tracebackhide__ = True  # ``data`` is the file, passwords and all (see `parse_lab`)
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise LabError(f"cannot read the lab file: {exc.strerror or exc}", path=file) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise LabError(f"invalid TOML: not UTF-8 ({exc.reason} at byte {exc.start})", path=file) from None
