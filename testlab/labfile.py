"""Write a ``lab.toml`` (see docs/lab-file.md) describing running testlab servers."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["host_entry", "lab_dict", "write_lab_toml"]

PerHost = Callable[[str, Any], Any]


def _transport(server: Any) -> str:
    name = type(server).__name__
    if name.startswith("Ssh"):
        return "ssh"
    if name.startswith("Telnet"):
        return "telnet"
    if name.startswith("Serial"):
        return "serial"
    raise TypeError(f"not a testlab server: {server!r}")


def host_entry(
    server: Any,
    *,
    user: str | None = None,
    password: str | Mapping[str, str] | None = None,
    key: str | Path | None = None,
    host_key_check: str = "off",
) -> dict[str, Any]:
    """The ``[hosts.<id>]`` table for one server (``SshServer``, ``TelnetServer`` or ``SerialConsole``).

    SSH hosts default to ``user="root"`` with the server's client key; telnet
    and serial hosts in login mode get the password user and its password.
    """
    transport = _transport(server)
    entry: dict[str, Any] = {"transport": transport}
    if transport == "ssh":
        entry.update(address=server.address, port=server.port, user=user or "root")
        entry["key"] = str(key or server.client_key_path)
        entry["host_key_check"] = host_key_check
    elif transport == "telnet":
        entry.update(address=server.address, port=server.port)
    else:
        entry["device"] = str(server.device)
        entry["baud"] = 115200
    if transport != "ssh":
        if user or server.user:
            entry["user"] = user or server.user
        if password is None and server.password:
            password = server.password
    if password is not None:
        entry["password"] = dict(password) if isinstance(password, Mapping) else password
    return entry


def _per_host(value: Any, host_id: str, server: Any) -> Any:
    return value(host_id, server) if callable(value) else value


def lab_dict(
    servers: Sequence[Any] | Mapping[str, Any],
    *,
    name: str = "testlab",
    ids: Sequence[str] | None = None,
    defaults: Mapping[str, Any] | None = None,
    user: str | PerHost | None = None,
    password: str | Mapping[str, str] | PerHost | None = None,
    key: str | Path | None = None,
    host_key_check: str = "off",
    tags: Sequence[str] | PerHost | None = None,
    extra: Mapping[str, Any] | PerHost | None = None,
    variables: Mapping[str, Any] | PerHost | None = None,
) -> dict[str, Any]:
    """Build the lab.toml data as a dict; see :func:`write_lab_toml` for the arguments."""
    if isinstance(servers, Mapping):
        pairs = list(servers.items())
    else:
        if ids is None:
            counters: dict[str, int] = {}
            ids = []
            for server in servers:
                transport = _transport(server)
                counters[transport] = counters.get(transport, 0) + 1
                ids.append(f"{transport}{counters[transport]}")
        if len(ids) != len(servers):
            raise ValueError("ids and servers differ in length")
        pairs = list(zip(ids, servers, strict=True))
    hosts: dict[str, Any] = {}
    for host_id, server in pairs:
        entry = host_entry(
            server,
            user=_per_host(user, host_id, server),
            password=_per_host(password, host_id, server),
            key=key,
            host_key_check=host_key_check,
        )
        host_tags = _per_host(tags, host_id, server)
        if host_tags:
            entry["tags"] = list(host_tags)
        host_extra = _per_host(extra, host_id, server)
        if host_extra:
            entry.update(host_extra)
        host_vars = _per_host(variables, host_id, server)
        if host_vars:
            entry["vars"] = dict(host_vars)
        hosts[host_id] = entry
    data: dict[str, Any] = {"lab": {"name": name}}
    if defaults:
        data["defaults"] = dict(defaults)
    data["hosts"] = hosts
    return data


def _dumps(data: Mapping[str, Any]) -> str:
    import tomli_w  # pytest-otto's own dependency: the lab file contract's writer

    return tomli_w.dumps(data)


def write_lab_toml(
    path: str | Path,
    servers: Sequence[Any] | Mapping[str, Any],
    **kwargs: Any,
) -> Path:
    """Write a lab.toml describing ``servers`` to ``path``; return the path.

    ``servers``: a sequence (ids default to ``ssh1, ssh2, ...``, ``telnet1``,
    ``serial1`` per transport) or a mapping ``{host_id: server}``.
    Keyword arguments (each per-host one may also be a callable
    ``(host_id, server) -> value``):

    - ``name``: ``[lab] name`` (default ``"testlab"``); ``ids``: explicit ids;
    - ``defaults``: the ``[defaults]`` table, e.g. ``{"command_timeout": 10.0}``;
    - ``user`` / ``password`` / ``key``: override the login (ssh: root + client key;
      telnet/serial login mode: the password user; ``password`` may be
      ``{"env": "NAME"}``);
    - ``host_key_check``: ``"off"`` (default), ``"accept-new"`` or ``"strict"``;
    - ``tags``: list of tags; ``variables``: the ``[hosts.<id>.vars]`` table;
    - ``extra``: more keys merged into each host table (e.g. ``{"hop": "ssh1"}``).
    """
    path = Path(path)
    path.write_text(_dumps(lab_dict(servers, **kwargs)))
    return path
