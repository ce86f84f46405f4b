"""The SSH connect's pure parts: the options given to asyncssh and the words for its errors.

The same connects against real sshd servers (refused, wrong password, unknown key,
a hop that cannot reach) are in test_ssh.py.
"""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from pytest_otto import HostConnectionError
from pytest_otto.transports._asyncssh import asyncssh
from pytest_otto.transports.ssh import (
    SshConnection,
    SshOptions,
    auth_methods_tried,
    connect_error_cause,
)

WHERE = "root@192.0.2.1:22"


def cause(exc: BaseException, tried: list[str] | None = None) -> str | None:
    return connect_error_cause(exc, where=WHERE, hop="hop 'jump'", tried=tried or [], key=None)


def test_each_connect_failure_in_words() -> None:
    assert cause(ConnectionRefusedError()) == f"connection to {WHERE} refused"
    denied = cause(asyncssh.PermissionDenied("no more methods"), ["key", "password"])
    assert denied == f"authentication failed for {WHERE} (tried key, password): no more methods"
    nothing_tried = cause(asyncssh.PermissionDenied("x"))
    assert nothing_tried == f"authentication failed for {WHERE} (tried default keys): x"
    unreachable = asyncssh.ChannelOpenError(asyncssh.OPEN_CONNECT_FAILED, "Connection refused")
    through = cause(unreachable)
    assert through is not None and through.startswith(f"cannot reach {WHERE} through hop 'jump': ")
    assert "Connection refused" in through  # the hop's own words, after the likely cause
    no_route = cause(OSError(errno.EHOSTUNREACH, "No route to host"))
    assert no_route is not None and no_route.startswith(f"cannot reach {WHERE}: ")
    assert cause(ValueError("invalid private key")) == f"{WHERE}: invalid private key"


def test_a_dropped_handshake_and_foreign_errors_are_not_translated() -> None:
    """A handshake sshd dropped (MaxStartups) is retried by the caller; a bug propagates."""
    assert cause(asyncssh.ConnectionLost("dropped")) is None
    assert cause(ConnectionResetError()) is None
    assert cause(RuntimeError("a bug")) is None


def test_the_methods_a_failed_login_tried(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    assert auth_methods_tried(SshOptions("h"), password_given=False) == []
    assert auth_methods_tried(SshOptions("h", key=Path("/k")), password_given=True) == ["key", "password"]
    monkeypatch.setenv("SSH_AUTH_SOCK", "/nonexistent/agent.sock")
    assert auth_methods_tried(SshOptions("h"), password_given=False) == ["agent"]
    assert auth_methods_tried(SshOptions("h", agent=False), password_given=False) == []


def connection(**options: object) -> SshConnection:
    return SshConnection("r1", SshOptions("192.0.2.1", **options), connect_timeout=lambda: 10.0)  # type: ignore[arg-type]


def test_the_options_given_to_asyncssh(tmp_path: Path) -> None:
    key = tmp_path / "id_test"
    key.write_text("not read here")
    admin = connection(port=2222, user="admin", key=key, agent=False)
    kwargs = admin._connect_options(5.0, known_hosts=None, host_key_algs=["ssh-ed25519"])
    assert (kwargs["port"], kwargs["username"], kwargs["agent_path"]) == (2222, "admin", None)
    assert kwargs["client_keys"][0] == str(key) and kwargs["ignore_encrypted"] is True  # as ssh -i
    assert kwargs["connect_timeout"] == kwargs["login_timeout"] == 5.0
    assert kwargs["server_host_key_algs"] == ["ssh-ed25519"] and kwargs["config"] is None
    unbounded = connection()._connect_options(float("inf"), known_hosts=None, host_key_algs=None)
    assert not {"connect_timeout", "username", "agent_path"} & set(unbounded)


def test_a_missing_key_file_is_named_before_connecting(tmp_path: Path) -> None:
    with pytest.raises(HostConnectionError, match=r"^r1: .*key file .*/nope does not exist"):
        connection(key=tmp_path / "nope")._connect_options(5.0, known_hosts=None, host_key_algs=None)
    with pytest.raises(HostConnectionError, match="is not a file"):
        connection(key=tmp_path)._connect_options(5.0, known_hosts=None, host_key_algs=None)
