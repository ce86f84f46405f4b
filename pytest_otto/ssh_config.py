"""OpenSSH client config (``~/.ssh/config``) for SSH hosts, under the lab's own keys.

A lab host's ``address`` may be a ``Host`` alias of the user's ssh config, as with
``ssh alias``: its ``HostName``, ``Port``, ``User``, ``IdentityFile`` and ``ProxyJump``
apply where the lab file does not set ``port``, ``user``, ``key`` or ``hop`` itself
(the lab wins). Host key checking stays the lab's (``host_key_check``, ``known_hosts``).

asyncssh reads the file (with OpenSSH's matching rules: patterns, negation, the first
value wins, ``Match``, ``Include``); it is resolved once, when the host is made, so a
mistake in the file is an error naming the host before any test runs, and messages
and ``known_hosts`` use the real address and port.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import LabError
from .transports._asyncssh import asyncssh

if TYPE_CHECKING:
    from .config import SshConfig

__all__ = ["DEFAULT_PATH", "SshTarget", "config_path", "lab_port", "resolve"]

#: The file read when a host's ``ssh_config`` is true (the default).
DEFAULT_PATH = Path("~/.ssh/config")


def config_path(setting: bool | str | Path | None) -> Path | None:
    """The file a host's ``ssh_config`` setting names: the default file, a path, or none."""
    if setting is True:
        return DEFAULT_PATH
    if setting is False or setting is None:
        return None
    return Path(setting)


def lab_port(config: SshConfig) -> int | None:
    """The lab's ``port``, or None when the file left it at the default, so the ssh config's may apply."""
    if config.port is None:
        return None
    if config.port != 22 or (config.explicit is not None and "port" in config.explicit):
        return config.port
    return None


def _error(host_id: str, message: str) -> LabError:
    return LabError(message, host_id=host_id, key="ssh_config")


@dataclass(frozen=True)
class SshTarget:
    """Where and as whom to connect, after the ssh config filled in what the lab left out."""

    address: str
    port: int
    user: str | None
    identity_files: tuple[Path, ...] = ()
    proxy_jump: str | None = None
    #: The file that was read, if one was.
    config: Path | None = None


def resolve(
    host_id: str, path: Path | None, address: str, *, port: int | None, user: str | None
) -> SshTarget:
    """``address`` (maybe an alias) as the file at ``path`` describes it; ``port``/``user``
    given here win. ``path`` None, or a default file that does not exist: nothing applies."""
    if path is None:
        return SshTarget(address, port or 22, user)
    path = path.expanduser()
    if not path.is_file():
        if path == DEFAULT_PATH.expanduser() and not path.exists():
            return SshTarget(address, port or 22, user)
        raise _error(host_id, f"{path} is not a readable file")
    config = _config_for(host_id, path, address, port, user)
    # User: only what the file says; asyncssh falls back to the local user itself.
    return SshTarget(
        address=str(config.get("Hostname", address)),
        port=port or int(config.get("Port", 22)),
        user=user or _str_or_none(config.get("User")),
        identity_files=tuple(Path(str(p)).expanduser() for p in config.get("IdentityFile", ()) or ()),
        proxy_jump=_str_or_none(config.get("ProxyJump")),
        config=path,
    )


def _config_for(host_id: str, path: Path, address: str, port: int | None, user: str | None) -> Any:
    """asyncssh's reading of ``path`` for this host (the options object resolves it)."""
    try:
        options = asyncssh.SSHClientConnectionOptions(
            config=[str(path)],
            host=address,
            port=port if port is not None else (),
            username=user if user is not None else (),
            known_hosts=None,
            client_keys=None,  # IdentityFile is read below, not loaded here
            agent_path=None,
        )
    except (OSError, ValueError, asyncssh.Error) as exc:
        raise _error(host_id, f"cannot use {path}: {exc}") from None
    return options.config


def _str_or_none(value: object) -> str | None:
    return str(value) if value not in (None, "", ()) else None
