"""The local host's own behaviour, on pipes (the default) and on a pty (``pty=True``).

The shared behaviour suite (B5-B23) runs on both modes through conftest's
``any_host``; here: what the two shell modes promise beyond it (a terminal or
none, timeouts and hard kills that spare older background jobs, the end of a
shell noticed while a job holds its output open, the lab file's ``pty`` key).
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import warnings
from pathlib import Path

import pytest
from test_behaviour import (
    PATIENCE,
    gone,
    sleeping,
    timeout_spares_older_jobs_and_close_ends_them,
    unique_sleep,
    wait_until,
)

from pytest_otto import LocalHost, ShellResetWarning, Status
from pytest_otto.lab import load_lab


async def test_terminal_only_with_pty(local: LocalHost, shell_mode: str) -> None:
    entry = (await local.run("tty <&1; case $- in *i*) echo interactive;; *) echo batch;; esac")).only
    if shell_mode == "pty":
        assert re.fullmatch(r"/dev/pts/\d+\ninteractive", entry.output)
    else:
        assert entry.output == "not a tty\nbatch"


async def test_timeout_spares_older_jobs_and_close_ends_them(local: LocalHost) -> None:
    await timeout_spares_older_jobs_and_close_ends_them(local)


async def test_hard_kill_spares_older_jobs_and_keeps_the_shell(local: LocalHost) -> None:
    """A command that ignores SIGINT is killed (with its own jobs); the shell and older jobs live on."""
    older, own_job, stubborn = unique_sleep(), unique_sleep(), unique_sleep()
    await local.run("cd /tmp; export OTTO_KEPT=yes")
    await local.run(f"sleep {older} >/dev/null 2>&1 &")
    # Only the hard kill ends the command before its sleep does: a run that waited
    # for the command would meet PATIENCE and fail here instead of hanging.
    command = f"sh -c 'sleep {own_job} & trap \"\" INT; echo ignoring; sleep {stubborn}'"
    entry = (await asyncio.wait_for(local.run(command, timeout=1), PATIENCE)).only
    assert entry.status is Status.Error
    assert entry.output.startswith("Command timed out after 1") and entry.output.endswith("ignoring")
    assert "fresh shell" not in entry.output  # recovered, not given up
    with warnings.catch_warnings():
        warnings.simplefilter("error", ShellResetWarning)  # the same shell answers
        assert (await local.run("pwd; echo $OTTO_KEPT")).only.output == "/tmp\nyes"
    assert await gone(local, stubborn, PATIENCE)
    assert await gone(local, own_job, PATIENCE)
    assert await sleeping(local, older) != ""
    await local.close()
    assert await gone(local, older, PATIENCE)


async def test_shell_end_is_seen_while_a_job_holds_its_output(local: LocalHost) -> None:
    """The shell's exit is its end, though a job it left still holds its output open."""
    duration = unique_sleep()
    await local.run(f"sleep {duration} &")  # keeps the shell's stdout open, far beyond PATIENCE
    # Seen at the exit, or else only at this timeout (its message), never at the job's end.
    entry = (await local.run("exit 3", timeout=PATIENCE)).only
    assert (entry.status, entry.retcode) == (Status.Error, -1)
    assert entry.output.startswith("Shell session 'default' on local ended (exit code 3)")
    assert "timed out" not in entry.output
    with pytest.warns(ShellResetWarning):
        assert (await local.run("echo fresh")).only.output == "fresh"
    await local.close()
    assert await gone(local, duration, PATIENCE)


async def test_sigint_to_the_shell_never_reaches_pytest(local: LocalHost) -> None:
    """The shell leads its own session: its process group is not pytest's."""
    entry = (await local.run("ps -o pid=,sid= -p $$")).only
    pid, sid = entry.output.split()
    assert pid == sid
    # an interrupted command in a loop: a stray SIGINT would raise KeyboardInterrupt here
    for _ in range(3):
        assert (await local.run("sleep 30", timeout=0.3)).only.status is Status.Error
    assert (await local.run("echo still-here")).only.output == "still-here"


@pytest.mark.skipif(shutil.which("python3") is None, reason="needs python3")
async def test_send_expect_drive_a_program(local: LocalHost, shell_mode: str) -> None:
    """An interactive program over send/expect: unbuffered (-u) on pipes, as a terminal would get it."""
    session = await local.open_session("repl")
    await session.send("python3 -u -i -c 'import sys; sys.ps1 = \"py> \"' 2>&1\n")
    await session.expect("py> ", timeout=PATIENCE)
    await session.send("print(6 * 7)\n")
    assert "42" in await session.expect("py> ", timeout=PATIENCE)
    await session.send("exit()\n")
    assert (await session.run("echo back", timeout=PATIENCE)).only.output == "back"


def test_lab_key_pty_on_a_local_host(tmp_path: Path) -> None:
    path = tmp_path / "lab.toml"
    path.write_text('[hosts.plain]\ntransport = "local"\n\n[hosts.term]\ntransport = "local"\npty = true\n')
    lab = load_lab(path)
    try:
        plain, term = lab["plain"], lab["term"]
        assert isinstance(plain, LocalHost) and isinstance(term, LocalHost)
        assert (plain.pty, term.pty) == (False, True)
        assert plain.run_sync("tty <&1").only.output == "not a tty"
        assert term.run_sync("tty <&1").only.output.startswith("/dev/pts/")
    finally:
        lab.close_sync()


async def test_aliases_from_rc_files_stay_off_in_a_shell_without_a_terminal(tmp_path: Path) -> None:
    """The framing makes a bash on pipes expand aliases (its own, see session._FUNCTIONS);
    aliases that rc files defined there were never in effect and must not start now."""
    rc = tmp_path / "rc.sh"
    rc.write_text("alias ls='echo alias-from-rc'\n")
    host = LocalHost(env={**os.environ, "BASH_ENV": str(rc)})
    try:
        assert (await host.run("ls -d /")).only.output == "/"
        await host.run("alias otto_mine='echo mine'")
        assert (await host.run("otto_mine")).only.output == "mine"
    finally:
        await host.close()


async def test_the_users_bashrc_prints_nothing_into_results_under_a_runner_started_by_sshd(
    tmp_path: Path, shell_mode: str
) -> None:
    """A CI runner that logs in over SSH and starts Python directly leaves ``SSH_CLIENT``
    set and ``SHLVL`` unset: a plain ``bash -c`` then reads ``~/.bashrc`` (Debian's bash
    does, taking itself for sshd's), and what it prints (pyenv's messages on root's CI
    machine) landed in a local oneshot's output. Neither shell reads it now."""
    home = tmp_path / "home"
    home.mkdir()
    (home / ".bashrc").write_text("echo noise-from-bashrc\n")
    (home / ".bash_profile").write_text("echo noise-from-profile\n")
    env = {k: v for k, v in os.environ.items() if k not in ("SHLVL", "BASH_ENV", "ENV")}
    env.update(HOME=str(home), SSH_CLIENT="127.0.0.1 50000 22")
    plain = await asyncio.create_subprocess_exec(
        "bash", "-c", "echo out", env=env, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE
    )
    said = (await plain.communicate())[0].decode()
    if "noise-from-bashrc" not in said:  # a bash built without SSH_SOURCE_BASHRC: no trap to show
        pytest.skip(f"this bash does not read ~/.bashrc for ssh commands: {said!r}")
    host = LocalHost(env=env, pty=shell_mode == "pty")
    try:
        assert (await host.oneshot("echo out")).output == "out"
        assert (await host.run("echo out")).only.output == "out"
    finally:
        await host.close()


@pytest.mark.parametrize("shell", [["dash"], ["busybox", "sh"], ["bash", "--posix"]], ids=lambda s: s[0])
@pytest.mark.parametrize("pty", [False, True], ids=["pipes", "pty"])
async def test_xtrace_keeps_the_framing_out_in_posix_shells_b9(shell: list[str], pty: bool) -> None:
    """Each shell traces the end function in its own way (bash --posix one level up,
    dash without quotes): only the user's commands reach the output."""
    if shutil.which(shell[0]) is None:
        pytest.skip(f"{shell[0]} is not installed")
    host = LocalHost("posix", shell=shell, pty=pty)
    try:
        await host.run("PS4='T> '; set -x")
        partial = (await host.run("printf partial")).only
        assert re.fullmatch(r"T+> printf partial\npartial", partial.output), partial.output
        failed = (await host.run("echo out; false")).only
        assert failed.retcode == 1
        assert re.fullmatch(r"T+> echo out\nout\nT+> false", failed.output), failed.output
        assert "__o" not in failed.output and "OTTO_" not in failed.output
        await host.run("set +x")
        assert (await host.run("echo clean")).only.output == "clean"
    finally:
        await host.close()


async def test_a_copy_that_times_out_stops_and_leaves_nothing(tmp_path: Path) -> None:
    """A local put runs in a thread, which cannot be cancelled: the copy must still stop,
    and not finish behind a result that says it timed out."""
    src = tmp_path / "big.bin"
    src.write_bytes(os.urandom(64 << 20))
    dest = tmp_path / "dest"
    host = LocalHost()
    try:
        status, message = await host.put(src, dest, timeout=0.01)
        assert status is Status.Error and "timed out" in message
        assert await wait_until(lambda: not any(dest.iterdir()) if dest.exists() else True)
        await asyncio.sleep(0.5)  # a copy that went on would have written by now
        assert not dest.exists() or list(dest.iterdir()) == []
        assert await host.put(src, dest) == (Status.Success, "")
        assert [p.name for p in dest.iterdir()] == ["big.bin"]
        assert (dest / "big.bin").read_bytes() == src.read_bytes()
    finally:
        await host.close()


async def test_two_hosts_on_one_machine_put_the_same_file_at_once(tmp_path: Path) -> None:
    """Two local hosts (or any two hosts sharing a filesystem) copying one file into one
    folder at the same time both succeed: each copy has a partial file of its own."""
    src = tmp_path / "settings.conf"
    src.write_bytes(os.urandom(8 << 20))  # several chunks: the two copies overlap
    dest = tmp_path / "inbox"
    first, second = LocalHost("first"), LocalHost("second")
    try:
        for _ in range(10):
            results = await asyncio.gather(first.put(src, dest), second.put(src, dest))
            assert all(results), results
        assert [p.name for p in dest.iterdir()] == ["settings.conf"]  # no partial file left
        assert (dest / "settings.conf").read_bytes() == src.read_bytes()
    finally:
        await asyncio.gather(first.close(), second.close())
