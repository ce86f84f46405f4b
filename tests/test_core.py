"""The otto loop, the blocking twins, transcripts and pitfalls of the framing."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import pytest

from pytest_otto import Host, LocalHost, Status, loop
from pytest_otto.output import OutputBuffer, decode_output
from pytest_otto.transcript import mask_secrets


def test_host_survives_many_event_loops(local: LocalHost) -> None:
    asyncio.run(local.run("cd /tmp; export FROM_LOOP=1"))
    for _ in range(3):
        assert asyncio.run(local.run("pwd; echo $FROM_LOOP")).only.output == "/tmp\n1"


def test_blocking_twins_from_threads(local: LocalHost) -> None:
    local.run_sync("cd /tmp")
    outputs: list[str] = []

    def worker(i: int) -> None:
        outputs.append(local.run_sync(f"echo $PWD-{i}").only.output)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(outputs) == [f"/tmp-{i}" for i in range(4)]


async def test_blocking_twin_inside_a_running_loop_still_works(local: LocalHost) -> None:
    # discouraged (it blocks the caller's loop) but it must not deadlock
    assert local.run_sync("echo inside").only.output == "inside"


def test_blocking_call_on_the_otto_loop_is_refused() -> None:
    host = LocalHost()

    async def misuse() -> None:
        host.run_sync("true")

    with pytest.raises(RuntimeError, match="otto loop"):
        loop.wait(misuse())


async def test_sync_and_async_faces_share_one_shell(local: LocalHost) -> None:
    await local.run("cd /var")
    assert local.run_sync("pwd").only.output == "/var"
    session = local.open_session_sync("side")
    session.run_sync("cd /usr")
    assert (await session.run("pwd")).only.output == "/usr"
    with session:
        assert session.run_sync("pwd").only.output == "/usr"
    assert not session.is_open


async def test_stale_marker_from_earlier_command_is_ignored_pitfall_4(local: LocalHost) -> None:
    # A command whose output is printed late (after its own end) cannot end the next one.
    await local.run("(sleep 0.3; echo late-output) &")
    first = (await local.run("echo first")).only
    await asyncio.sleep(0.5)
    second = (await local.run("echo second")).only
    assert first.output.splitlines()[-1] == "first"
    assert second.output.splitlines()[-1] == "second"
    assert "OTTO_" not in first.output + second.output


async def test_long_command_is_sent_whole(local: LocalHost) -> None:
    word = "x" * 200_000
    entry = (await local.run(f"echo {word} | wc -c")).only
    assert entry.output.strip() == str(len(word) + 1)


async def test_command_with_nul_is_refused(local: LocalHost, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="NUL"):
        await local.run("echo a\x00b")
    # in a list, before any of its commands runs
    with pytest.raises(ValueError, match=r"NUL characters \(command 2 of 2\)"):
        await local.run([f"touch {tmp_path}/ran", "echo a\x00b"])
    assert not (tmp_path / "ran").exists()


async def test_transcript_records_and_masks(local: LocalHost) -> None:
    mark = local.transcript.mark()
    await local.run(["echo one", "false"])
    await local.oneshot("echo two")
    entries = local.transcript.since(mark)
    assert [(e.kind, e.command, e.output, e.retcode) for e in entries] == [
        ("run", "echo one", "one", 0),
        ("run", "false", "", 1),
        ("oneshot", "echo two", "two", 0),
    ]
    assert entries[1].status is Status.Failed
    assert "echo one" in entries[0].format() and "exit 0" in entries[0].format()

    class SecretLocal(LocalHost):
        def _secret_values(self) -> list[str]:
            return ["hunter2"]

    secret_host = SecretLocal()
    try:
        await secret_host.run("echo the password is hunter2")
        (entry,) = list(secret_host.transcript)
        assert "hunter2" not in entry.command + entry.output + entry.format()
        assert "********" in entry.output
    finally:
        await secret_host.close()


def test_mask_secrets_ignores_empty_values() -> None:
    assert mask_secrets("a b c", ["", "b"]) == "a ******** c"


def test_output_buffer_cap_and_decode() -> None:
    buffer = OutputBuffer(limit=5)
    buffer.append(b"abc")
    buffer.append(b"defgh")
    assert buffer.raw == b"abcde"
    assert buffer.dropped == 3
    assert buffer.text().startswith("abcde\n[pytest-otto: output truncated: 3 more bytes")
    assert decode_output(b"a\r\nb\xff\r\n\n") == "a\nb\ufffd"


async def test_host_rejects_bad_arguments(local: LocalHost) -> None:
    with pytest.raises(TypeError):
        await local.run(b"echo bytes")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        await local.run(["echo ok", 3])  # type: ignore[list-item]
    with pytest.raises(TypeError):
        await local.oneshot(["echo", "list"])  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        await local.open_session("")
    with pytest.raises(ValueError):
        LocalHost("")
    assert len(local.transcript) == 0


def test_public_api_is_typed_and_exported() -> None:
    import pathlib

    import pytest_otto

    assert (pathlib.Path(pytest_otto.__file__).parent / "py.typed").exists()
    for name in pytest_otto.__all__:
        assert getattr(pytest_otto, name) is not None
    assert issubclass(LocalHost, Host)
    for method in ("run", "oneshot", "open_session", "send", "expect", "put", "get", "connect", "close"):
        assert asyncio.iscoroutinefunction(getattr(Host, method))
        assert callable(getattr(Host, f"{method}_sync"))
        assert getattr(Host, method).__doc__ and getattr(Host, f"{method}_sync").__doc__


def test_transcript_since_keeps_order_and_bound() -> None:
    from pytest_otto.transcript import Transcript, TranscriptEntry

    transcript = Transcript(max_entries=5)

    def entry(i: int) -> TranscriptEntry:
        return TranscriptEntry("h", "s", "run", f"c{i}", "", Status.Success, 0, 0.0, 0.0)

    for i in range(3):
        transcript.append(entry(i))
    mark = transcript.mark()
    assert transcript.since(mark) == []
    transcript.append(entry(3))
    assert [e.command for e in transcript.since(mark)] == ["c3"]
    for i in range(4, 9):
        transcript.append(entry(i))
    assert [e.command for e in transcript.since(mark)] == ["c4", "c5", "c6", "c7", "c8"]  # c3 aged out
    assert len(transcript) == 5


async def test_transcript_watch_sees_exactly_the_hosts_that_ran(local: LocalHost) -> None:
    """A watch reports the transcripts that moved since the last take, with those entries only."""
    from pytest_otto.transcript import TranscriptWatch

    idle, other = LocalHost("idle"), LocalHost("other")
    try:
        await local.run("echo before")  # before the watch: not reported
        with TranscriptWatch() as watch:
            await other.run("echo o1")
            await local.run(["echo l1", "echo l2"])
            await idle.connect()  # connecting records nothing
            taken = watch.take()
            assert [(t, [e.command for e in entries]) for t, entries in taken] == [
                (other.transcript, ["echo o1"]),
                (local.transcript, ["echo l1", "echo l2"]),
            ]
            assert watch.take() == []
            await local.run("echo l3")
            assert [[e.output for e in entries] for _, entries in watch.take()] == [["l3"]]
        await local.run("echo after")  # closed: no longer told
        assert watch.take() == []
    finally:
        await idle.close()
        await other.close()


def test_transcript_watch_keeps_every_entry_from_racing_threads() -> None:
    """Appends from several threads at once: the watch's mark is the first one, nothing is lost."""
    from pytest_otto.transcript import Transcript, TranscriptEntry, TranscriptWatch

    transcript = Transcript()
    transcript.append(TranscriptEntry("h", "s", "run", "old", "", Status.Success, 0, 0.0, 0.0))

    def writer(t: int) -> None:
        for i in range(200):
            transcript.append(TranscriptEntry("h", "s", "run", f"{t}-{i}", "", Status.Success, 0, 0.0, 0.0))

    with TranscriptWatch() as watch:
        threads = [threading.Thread(target=writer, args=(t,)) for t in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        ((seen, entries),) = watch.take()
    assert seen is transcript
    assert sorted(e.command for e in entries) == sorted(f"{t}-{i}" for t in range(4) for i in range(200))


@pytest.mark.parametrize(
    ("body", "kept"),
    [
        (b"out\n+ __oe 7\n+ set +xv -- 0 hxB 7\n", b"out\n"),
        (b"partial+ __oe 7\n+ set +xv -- 0 hxB 7\n", b"partial"),
        (b"out\r\n+ __oe 7\r\n+ set +xv -- 0 hxB 7\r\n", b"out\r\n"),
        (b"+ __oe 7\n+ set +xv -- 0 hxB 7\n", b""),
        # PS4 expanded differently for each line: the call's line goes whole
        (b"out\nx1 __oe 7\nx2 set +xv -- 0 hxB 7\n", b"out\n"),
        # not the end function's trace: another serial, exit code or flags; a lone line
        (b"out\n+ __oe 17\n+ set +xv -- 0 hxB 17\n", None),
        (b"out\n+ __oe 7\n+ set +xv -- 1 hxB 7\n", None),
        (b"out\n+ __oe 7\n+ set +xv -- 0 hB 7\n", None),
        (b"+ set +xv -- 0 hxB 7\n", None),
        (b"out\n+ echo 7\n+ set +xv -- 0 hxB 7\n", None),
        (b"out with no newline", None),
    ],
)
def test_framing_trace_is_cut_exactly(body: bytes, kept: bytes | None) -> None:
    """Only the end function's own two trace lines go; anything else is output (B8)."""
    from pytest_otto.framing import _cut_framing_trace

    assert _cut_framing_trace(body, b"7", b"0", b"hxB") == (body if kept is None else kept)


class _AnswerLater:
    """A fake shell transport: answers each framed line through the event loop, and
    with ``early`` also to a read right after the write (as a local shell does when the
    CPUs are busy); counts the early reads it was asked for."""

    tty = False
    line_limit = None
    can_kill_foreground = False
    restores_on_close = False

    def __init__(self) -> None:
        self.early = False
        self.early_reads = 0
        self.pending = b""

    async def open(self, sink: object) -> None:
        self.sink = sink

    def write_nowait(self, data: bytes) -> int:
        import re

        text = data.decode()
        probe = re.search(r"__os\(\) \{ printf 'OTTO_(\w+)_%s_S", text)
        if probe:
            self.prefix = probe.group(1)
            answer = f"OTTO_{self.prefix}_P_hB_A_S\n".encode()
        else:
            answer = f"\nOTTO_{self.prefix}_{text.rsplit(' ', 1)[1].strip()}_E_0_hB\n".encode()
        self.pending += answer
        if not self.early:  # not there yet for an early read; the loop delivers it
            self.deliver()
        else:  # readable at once, and through the loop for whoever did not look early
            asyncio.get_running_loop().call_soon(self.deliver)
        return len(data)

    def deliver(self) -> None:
        data, self.pending = self.pending, b""
        if data:
            asyncio.get_running_loop().call_soon(self.sink.feed, data)  # type: ignore[attr-defined]

    async def write(self, data: bytes) -> None:
        self.write_nowait(data)

    def read_pending(self) -> None:
        self.early_reads += 1
        data, self.pending = self.pending, b""
        if data:
            self.sink.feed(data)  # type: ignore[attr-defined]

    async def interrupt(self) -> None:
        pass

    async def close(self) -> None:
        pass


async def test_early_reads_back_off_while_they_miss_and_resume_on_a_hit() -> None:
    """Reading right after a write pays only when the shell already answered (busy
    CPUs): after 8 misses in a row only every 8th write tries, and a hit resumes."""
    from pytest_otto.session import EARLY_READ_MISSES, ShellSession

    fake = _AnswerLater()
    shell = ShellSession("fake", "default", lambda: fake, connect_timeout=lambda: 5.0)  # type: ignore[arg-type,return-value]

    async def run(count: int) -> int:
        before = fake.early_reads
        for _ in range(count):
            assert (await shell.run_command("true", time.monotonic() + 5, 5)).retcode == 0
        return fake.early_reads - before

    await shell.open()
    assert await run(EARLY_READ_MISSES) == EARLY_READ_MISSES  # every write tries while misses are few
    assert await run(8 * EARLY_READ_MISSES) == 8  # then one write in EARLY_READ_MISSES
    fake.early = True
    await run(EARLY_READ_MISSES)  # a try comes within EARLY_READ_MISSES writes and hits
    assert await run(EARLY_READ_MISSES) == EARLY_READ_MISSES  # and every write tries again
    await shell.close()
