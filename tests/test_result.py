"""B1-B4: the result types."""

from __future__ import annotations

import pytest

from pytest_otto import CommandFailed, CommandStatus, RunResult, Status, TransferResult


def test_status_members_and_values_b1() -> None:
    assert [(m.name, m.value) for m in Status] == [
        ("Success", 0),
        ("Failed", 1),
        ("Error", 2),
        ("Unstable", 3),
        ("Skipped", 4),
    ]
    assert repr(Status.Success) == "<Status.Success: 0>"
    assert Status(0) is Status.Success
    assert Status(2) is Status.Error


def test_is_ok_b2() -> None:
    assert {s for s in Status if s.is_ok} == {Status.Success, Status.Skipped}


def test_command_status_b3() -> None:
    by_position = CommandStatus("echo hi", "hi", Status.Success, 0)
    by_keyword = CommandStatus(command="echo hi", output="hi", status=Status.Success, retcode=0)
    assert by_position == by_keyword
    assert by_position._fields == ("command", "output", "status", "retcode")
    command, output, status, retcode = by_keyword
    assert (command, output, status, retcode) == ("echo hi", "hi", Status.Success, 0)
    assert isinstance(by_position, tuple)


@pytest.mark.parametrize("status", list(Status))
def test_command_status_is_true_only_when_ok(status: Status) -> None:
    """``assert host.oneshot_sync(cmd)`` checks the command, not that a tuple is non-empty."""
    entry = CommandStatus("cmd", "", status, 0 if status is Status.Success else 1)
    assert entry.ok is bool(entry) is status.is_ok


def test_run_result_repr_b4() -> None:
    result = RunResult([CommandStatus("cd /tmp", "", Status.Success, 0)])
    assert repr(result).startswith(
        "RunResult(status=<Status.Success: 0>, statuses=[CommandStatus(command='cd /tmp', "
    )


def test_run_result_only_b4() -> None:
    one = CommandStatus("true", "", Status.Success, 0)
    assert RunResult([one]).only is one
    with pytest.raises(ValueError):
        RunResult([]).only  # noqa: B018
    with pytest.raises(ValueError):
        RunResult([one, one]).only  # noqa: B018


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        ([], Status.Success),
        ([Status.Success, Status.Skipped], Status.Success),
        ([Status.Success, Status.Failed, Status.Error], Status.Failed),
        ([Status.Skipped, Status.Error, Status.Failed], Status.Error),
        ([Status.Unstable], Status.Unstable),
    ],
)
def test_run_result_status_b4(statuses: list[Status], expected: Status) -> None:
    result = RunResult([CommandStatus(f"c{i}", "", s, s.value) for i, s in enumerate(statuses)])
    assert result.status is expected
    assert bool(result) is expected.is_ok
    assert result.statuses == [CommandStatus(f"c{i}", "", s, s.value) for i, s in enumerate(statuses)]


@pytest.mark.parametrize("status", list(Status))
def test_transfer_result_unpacks_and_is_true_only_when_ok(status: Status) -> None:
    """``assert host.put_sync(...)`` checks the transfer, as a ``(Status, str)`` tuple never could."""
    result = TransferResult(status, "" if status.is_ok else "put x: no such file")
    assert bool(result) is status.is_ok is result.ok
    got_status, message = result
    assert (got_status, message) == result == (status, result.message)


def test_check_raises_command_failed_for_the_first_failed_command() -> None:
    ok = CommandStatus("true", "", Status.Success, 0)
    failed = CommandStatus("false", "no", Status.Failed, 1)
    timed_out = CommandStatus("sleep 9", "", Status.Error, -1)
    result = RunResult([ok, failed, timed_out])
    with pytest.raises(CommandFailed) as caught:
        result.check()
    assert caught.value.failed is failed and caught.value.result is result
    assert str(caught.value) == "command 'false' failed: Failed, exit code 1; output: 'no'"
    with pytest.raises(CommandFailed, match="'sleep 9' failed: Error, no exit code"):
        timed_out.check()
    assert RunResult([ok]).check() == RunResult([ok]) and ok.check() is ok
    skipped = CommandStatus("x", "", Status.Skipped, 0)
    assert skipped.check() is skipped  # Skipped is ok (B2)


def test_command_failed_shows_a_secret_masked() -> None:
    """The message of `CommandFailed` is what pytest prints: a secret in the output stays masked."""
    from pytest_otto.transcript import SecretText

    output = SecretText("token=hunter2", "token=********")
    with pytest.raises(CommandFailed) as caught:
        CommandStatus("show token", output, Status.Failed, 1).check()
    assert "hunter2" not in str(caught.value) and "token=********" in str(caught.value)


def test_one_error_tree_keeping_the_builtins() -> None:
    """Every error is an `OttoError`; ``except ValueError/ConnectionError/TimeoutError`` still work."""
    import pytest_otto as otto

    expected = {
        otto.LabError: ValueError,
        otto.HostConnectionError: ConnectionError,
        otto.LineHeld: ConnectionError,
        otto.OttoTimeout: TimeoutError,
        otto.ExpectTimeout: TimeoutError,
        otto.SendTimeout: TimeoutError,
        otto.CommandFailed: Exception,
        otto.TransferFailed: Exception,
    }
    for error, builtin in expected.items():
        assert issubclass(error, otto.OttoError) and issubclass(error, builtin), error
    assert issubclass(otto.LineHeld, otto.HostConnectionError)
    assert issubclass(otto.ExpectTimeout, otto.OttoTimeout) and issubclass(otto.SendTimeout, otto.OttoTimeout)
    errors_doc = otto.errors.__doc__ or ""
    for name in [e.__name__ for e in expected] + ["OttoError", "ShellResetWarning"]:
        assert name in errors_doc, f"the tree at the top of errors.py does not show {name}"
