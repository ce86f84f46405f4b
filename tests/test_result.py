"""B1-B4: the result types."""

from __future__ import annotations

import pytest

from pytest_otto import CommandStatus, RunResult, Status, TransferResult


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
