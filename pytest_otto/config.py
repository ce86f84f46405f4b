"""The lab file (``lab.toml``) as plain data: parsing, validation, secrets.

Nothing here connects or starts anything, so the plugin can load and check a lab
file before any test runs and report every mistake as a usage error that names the
file, the host id and the key. The contract is ``spec/lab-toml.md``; the extra keys
(``known_hosts``, ``agent``, ``login_prompt``, ``password_prompt``, ``write_delay``,
``keepalive_interval``, ``max_output``) are documented in ``lab.toml.example``.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .transcript import MASK

__all__ = [
    "DEFAULTS",
    "HOST_ID_RE",
    "HOST_KEYS",
    "TRANSPORTS",
    "HostConfig",
    "LabConfig",
    "LabError",
    "Revealed",
    "Secret",
    "load_lab_config",
    "parse_lab",
]

#: The transports a host may name; ``ssh`` when the key is absent.
TRANSPORTS: tuple[str, ...] = ("ssh", "telnet", "serial", "local")

#: Host ids must survive as pytest node ids (``test_x[router1]``) and ``-k`` words.
HOST_ID_RE = re.compile(r"[A-Za-z0-9_.-]+")

HOST_KEY_CHECKS: tuple[str, ...] = ("strict", "accept-new", "off")

#: Keys every transport accepts.
_COMMON_KEYS = ("transport", "tags", "vars", "connect_timeout", "command_timeout", "max_output", "line_limit")
_LOGIN_KEYS = ("user", "password")
_CONSOLE_KEYS = ("login_prompt", "password_prompt", "write_delay")

#: Which keys each transport accepts (besides the common ones).
HOST_KEYS: dict[str, tuple[str, ...]] = {
    "ssh": (
        "address",
        "port",
        *_LOGIN_KEYS,
        "key",
        "host_key_check",
        "known_hosts",
        "agent",
        "hop",
        "keepalive_interval",
        "pty",
    ),
    "telnet": ("address", "port", *_LOGIN_KEYS, *_CONSOLE_KEYS, "single_connection"),
    "serial": ("device", "baud", *_LOGIN_KEYS, *_CONSOLE_KEYS),
    "local": ("pty",),
}

#: Every key a host table (or ``[defaults]``) may hold, in documentation order.
ALL_HOST_KEYS: tuple[str, ...] = tuple(
    dict.fromkeys(
        [
            "transport",
            *HOST_KEYS["ssh"],
            *HOST_KEYS["telnet"],
            *HOST_KEYS["serial"],
            "tags",
            "vars",
            "connect_timeout",
            "command_timeout",
            "max_output",
            "line_limit",
        ]
    )
)

#: Built-in values of keys that are absent from both the host table and ``[defaults]``.
DEFAULTS: dict[str, Any] = {
    "transport": "ssh",
    "host_key_check": "accept-new",
    "agent": True,
    "pty": False,
    "single_connection": False,
    "write_delay": 0.0,
    "connect_timeout": 10.0,
    "command_timeout": 60.0,
    "keepalive_interval": 15.0,
    "max_output": 256 * 1024 * 1024,
}
DEFAULT_PORTS: dict[str, int] = {"ssh": 22, "telnet": 23}
DEFAULT_BAUD = 115200

_TOP_KEYS = ("lab", "defaults", "hosts")
_LAB_KEYS = ("name",)
_SECRET_KEYS = ("env",)
_PATH_KEYS = ("key", "known_hosts", "device")
_STR_KEYS = ("address", "user", "hop", "login_prompt", "password_prompt")
_INT_KEYS = {"port": (1, 65535), "baud": (1, None), "max_output": (1, None)}
_TIMEOUT_KEYS = ("connect_timeout", "command_timeout")  # > 0, inf allowed
_DELAY_KEYS = ("write_delay", "keepalive_interval")  # >= 0, finite
_REGEX_KEYS = ("login_prompt", "password_prompt")


def _hint(word: str, choices: object) -> str:
    close = difflib.get_close_matches(word, [str(c) for c in choices], n=1, cutoff=0.6)  # type: ignore[attr-defined]
    return f" (did you mean {close[0]!r}?)" if close else ""


class LabError(ValueError):
    """A mistake in a lab file, found at load time (or a missing secret at connect time).

    The message names the file, the host id and the key, so the user can fix the
    file without reading a traceback; the plugin turns it into a usage error.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | os.PathLike[str] | None = None,
        host_id: str | None = None,
        key: str | None = None,
    ) -> None:
        self.path = Path(path) if path is not None else None
        self.host_id = host_id
        self.key = key
        self.reason = message
        where = []
        if self.path is not None:
            where.append(str(self.path))
        if host_id is not None:
            where.append(f"host {host_id!r}")
        if key is not None:
            where.append(f"key {key!r}")
        super().__init__(": ".join([*where, message]))


class Revealed(str):
    """A revealed secret: the plain value for every use, but masked by ``repr``.

    Tracebacks shown with ``pytest -l`` (and written to JUnit XML) print each
    frame's locals with ``repr``; a password held in a local or in a dict of
    connect options then shows as a mask instead of its value.
    """

    __slots__ = ()

    def __repr__(self) -> str:
        return repr(MASK)


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


@dataclass(frozen=True)
class HostConfig:
    """One ``[hosts.<id>]`` table after ``[defaults]`` were merged under it.

    Values are validated and normalised (paths resolved, ports defaulted).
    ``explicit`` holds the keys the host table itself set, and ``raw`` that table
    as written, so `LabConfig.to_toml` writes the file back exactly.
    """

    id: str
    transport: str = "ssh"
    address: str | None = None
    port: int | None = None
    user: str | None = None
    password: Secret | None = None
    key: Path | None = None
    host_key_check: str = "accept-new"
    known_hosts: Path | None = None
    agent: bool = True
    pty: bool = False
    hop: str | None = None
    tags: tuple[str, ...] = ()
    vars: dict[str, Any] = field(default_factory=dict)
    device: Path | None = None
    baud: int | None = None
    login_prompt: str | None = None
    password_prompt: str | None = None
    write_delay: float = 0.0
    #: telnet: the port takes one connection (a serial line behind a console server).
    single_connection: bool = False
    connect_timeout: float = 10.0
    command_timeout: float = 60.0
    keepalive_interval: float = 15.0
    max_output: int = 256 * 1024 * 1024
    #: Longest typed line; longer commands go in pieces. None: the host's default
    #: (512 on a terminal, none on pipes); 0: no limit.
    line_limit: int | None = None
    explicit: frozenset[str] | None = field(default=None, compare=False, repr=False)
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)
    base: Path | None = field(default=None, compare=False, repr=False)

    def to_toml(self, base: Path | None = None) -> dict[str, Any]:
        """This host's table for a lab file (secrets as references, paths as written).

        Without ``explicit`` (a config built in code), every key that differs from
        what the file would default to is written. ``base`` is the folder the file
        will live in: relative paths written elsewhere are made absolute.
        """
        if self.explicit is not None:
            order = [*self.raw, *ALL_HOST_KEYS]
            keys = [k for k in dict.fromkeys(order) if k in self.explicit and k in ALL_HOST_KEYS]
        else:
            implied = _implied(self.transport)
            keys = [
                k
                for k in ALL_HOST_KEYS
                if k == "transport" or getattr(self, k) != implied.get(k, _FIELD_DEFAULTS.get(k))
            ]
            if self.transport == "ssh":
                keys.remove("transport")
        table: dict[str, Any] = {}
        for k in keys:
            table[k] = self._toml_value(k, base)
        return table

    def _toml_value(self, k: str, base: Path | None) -> Any:
        value = getattr(self, k)
        if isinstance(value, Secret):
            return value.to_toml()
        if isinstance(value, Path):
            written = self.raw.get(k)
            if isinstance(written, str) and _resolve_path(written, self.base) == value:
                return _path_as_written(written, self.base, base)
            return str(value)
        if isinstance(value, tuple):
            return list(value)
        if isinstance(value, dict):
            return dict(value)
        return value


_FIELD_DEFAULTS: dict[str, Any] = {
    f.name: (f.default if f.default is not dataclasses.MISSING else f.default_factory())  # type: ignore[misc]
    for f in dataclasses.fields(HostConfig)
    if f.name not in ("id", "explicit", "raw", "base")
}


def _implied(transport: str) -> dict[str, Any]:
    implied: dict[str, Any] = {}
    if transport in DEFAULT_PORTS:
        implied["port"] = DEFAULT_PORTS[transport]
    if transport == "serial":
        implied["baud"] = DEFAULT_BAUD
    return implied


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
        if key in _PATH_KEYS and isinstance(value, str):
            return _path_as_written(value, self.base, base)
        return value


def _path_as_written(written: str, origin: Path | None, base: Path | None) -> str:
    """A path the file wrote against ``origin``, for a file in ``base``: as written while
    it still names the same file there, else made absolute."""
    same_folder = base is None or origin is None or origin == base
    if same_folder or Path(written).expanduser().is_absolute():
        return written
    return str(_resolve_path(written, origin))


def _resolve_path(text: str, base: str | Path | None) -> Path:
    path = Path(text).expanduser()
    if not path.is_absolute() and base is not None:
        path = Path(base) / path
    return path


def _type_name(value: object) -> str:
    return {bool: "boolean", int: "integer", float: "float", str: "string", list: "array", dict: "table"}.get(
        type(value), type(value).__name__
    )


class _Checker:
    """Validation of one key's value, with errors carrying file, host and key."""

    def __init__(self, path: Path | None, host_id: str | None) -> None:
        self.path = path
        self.host_id = host_id

    def error(self, key: str | None, message: str) -> LabError:
        return LabError(message, path=self.path, host_id=self.host_id, key=key)

    def wrong_type(self, key: str, value: object, expected: str) -> LabError:
        shown = "" if key == "password" else f" {value!r}"
        return self.error(key, f"expected {expected}, got {_type_name(value)}{shown}")

    def unknown(self, key: str, known: tuple[str, ...] | list[str], where: str) -> LabError:
        return self.error(key, f"unknown key in {where}{_hint(key, known)}")

    def value(self, key: str, value: Any, base: Path | None) -> Any:
        """Check and normalise ``value`` for ``key`` (transport rules are elsewhere)."""
        if key == "transport":
            if not isinstance(value, str):
                raise self.wrong_type(key, value, "a string")
            if value not in TRANSPORTS:
                choices = ", ".join(TRANSPORTS) + _hint(value, TRANSPORTS)
                raise self.error(key, f"unknown transport {value!r}; one of {choices}")
            return value
        if key == "password":
            if isinstance(value, str):
                return Secret(value=value, path=self.path)
            if isinstance(value, dict):
                for k in value:
                    if k not in _SECRET_KEYS:
                        raise self.error(key, f"unknown key {k!r} in secret table{_hint(k, _SECRET_KEYS)}")
                name = value.get("env")
                if not isinstance(name, str) or not name:
                    raise self.error(key, 'a secret table needs env = "VARIABLE_NAME"')
                return Secret(env=name, path=self.path)
            raise self.wrong_type(key, value, 'a string or { env = "NAME" }')
        if key in _PATH_KEYS:
            if not isinstance(value, str) or not value:
                raise self.wrong_type(key, value, "a non-empty path string")
            return _resolve_path(value, base)
        if key in _STR_KEYS:
            if not isinstance(value, str) or not value:
                raise self.wrong_type(key, value, "a non-empty string")
            if key in _REGEX_KEYS:
                try:
                    re.compile(value)
                except re.error as exc:
                    raise self.error(key, f"not a valid regular expression: {exc}") from None
            return value
        if key == "host_key_check":
            if not isinstance(value, str):
                raise self.wrong_type(key, value, "a string")
            if value not in HOST_KEY_CHECKS:
                choices = ", ".join(HOST_KEY_CHECKS)
                raise self.error(key, f"{value!r} is not one of {choices}{_hint(value, HOST_KEY_CHECKS)}")
            return value
        if key in ("agent", "pty", "single_connection"):
            if not isinstance(value, bool):
                raise self.wrong_type(key, value, "true or false")
            return value
        if key == "line_limit":
            if isinstance(value, bool) or not isinstance(value, int):
                raise self.wrong_type(key, value, "an integer (bytes; 0 for no limit)")
            if value != 0 and value < 64:
                raise self.error(key, f"{value} is too small: at least 64 bytes, or 0 for no limit")
            return value
        if key in _INT_KEYS:
            if isinstance(value, bool) or not isinstance(value, int):
                raise self.wrong_type(key, value, "an integer")
            low, high = _INT_KEYS[key]
            if value < low or (high is not None and value > high):
                bound = f"{low}..{high}" if high is not None else f">= {low}"
                raise self.error(key, f"{value} is out of range ({bound})")
            return value
        if key in _TIMEOUT_KEYS or key in _DELAY_KEYS:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise self.wrong_type(key, value, "a number of seconds")
            value = float(value)
            if math.isnan(value):
                raise self.error(key, "nan is not a number of seconds")
            if key in _TIMEOUT_KEYS and value <= 0:
                raise self.error(key, f"{value:g} must be positive (inf for no bound)")
            if key in _DELAY_KEYS and (value < 0 or math.isinf(value)):
                raise self.error(key, f"{value:g} must be zero or a positive finite number")
            return value
        if key == "tags":
            if not isinstance(value, list):
                raise self.wrong_type(key, value, "an array of strings")
            for tag in value:
                if not isinstance(tag, str) or not tag:
                    raise self.error(key, f"each tag must be a non-empty string, got {tag!r}")
            return tuple(value)
        if key == "vars":
            if not isinstance(value, dict):
                raise self.wrong_type(key, value, "a table")
            return dict(value)
        raise AssertionError(key)  # pragma: no cover - keys are checked before


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
        try:
            data = tomllib.loads(data)
        except tomllib.TOMLDecodeError as exc:
            host_id, key = _toml_error_place(data, exc)
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
    dcheck = _Checker(file, None)
    defaults: dict[str, Any] = {}
    for k, v in defaults_raw.items():
        if k not in ALL_HOST_KEYS:
            raise LabError(f"unknown key in [defaults]{_hint(k, ALL_HOST_KEYS)}", path=file, key=k)
        try:
            defaults[k] = dcheck.value(k, v, base)
        except LabError as exc:
            raise LabError(f"in [defaults]: {exc.reason}", path=file, key=k) from None

    hosts_raw = data.get("hosts", {})
    if not isinstance(hosts_raw, dict):
        raise top.wrong_type("hosts", hosts_raw, "a table of [hosts.<id>] tables")
    hosts: list[HostConfig] = []
    for host_id, table in hosts_raw.items():
        hosts.append(_parse_host(host_id, table, defaults, defaults_raw, file, base))
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
    host_id: object,
    table: object,
    defaults: dict[str, Any],
    defaults_raw: dict[str, Any],
    file: Path | None,
    base: Path | None,
) -> HostConfig:
    if not isinstance(host_id, str) or not HOST_ID_RE.fullmatch(host_id):
        raise LabError(
            "a host id may only hold letters, digits, '-', '_' and '.' (it becomes part of test ids)",
            path=file,
            host_id=str(host_id),
        )
    check = _Checker(file, host_id)
    if not isinstance(table, dict):
        raise check.error(None, f"[hosts.{host_id}] must be a table, got {_type_name(table)}")
    for k in table:
        if k not in ALL_HOST_KEYS:
            raise check.unknown(k, ALL_HOST_KEYS, f"[hosts.{host_id}]")
    own = {k: check.value(k, v, base) for k, v in table.items()}
    transport = own.get("transport", defaults.get("transport", DEFAULTS["transport"]))
    allowed = set(_COMMON_KEYS) | set(HOST_KEYS[transport])
    for k in own:
        if k not in allowed:
            owners = [t for t, keys in HOST_KEYS.items() if k in keys]
            raise check.error(k, f"not valid for transport {transport!r} (only for {', '.join(owners)})")
    values: dict[str, Any] = {}
    for k in allowed:
        if k in own:
            values[k] = own[k]
        elif k in defaults and not (k == "hop" and defaults[k] == host_id):
            values[k] = defaults[k]  # a default hop takes every host through it, but itself
    values["transport"] = transport
    for k, v in _implied(transport).items():
        values.setdefault(k, v)
    if transport in ("ssh", "telnet") and "address" not in values:
        raise check.error("address", f"missing: a {transport} host needs an address (name or IP)")
    if transport == "serial" and "device" not in values:
        raise check.error("device", "missing: a serial host needs a device (e.g. /dev/ttyUSB0)")
    return HostConfig(id=host_id, **values, explicit=frozenset(table), raw=dict(table), base=base)


def _check_hops(hosts: list[HostConfig], file: Path | None) -> None:
    by_id = {cfg.id: cfg for cfg in hosts}
    for cfg in hosts:
        chain = [cfg.id]
        current = cfg
        while current.hop is not None:
            target = by_id.get(current.hop)
            if target is None:
                raise LabError(
                    f"hop to unknown host {current.hop!r} (chain {' -> '.join([*chain, current.hop])})"
                    f"{_hint(current.hop, list(by_id))}",
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
