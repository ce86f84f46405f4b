"""The hop onto the otto loop (pytest_otto/loop.py) hands back every kind of outcome:
a result, an exception, a cancellation, also one that comes before the otto loop
started the call, from loops of the caller's own and from threads without one."""

from __future__ import annotations

import asyncio
import threading
import warnings

import pytest

from pytest_otto import LocalHost, loop


async def answer() -> int:
    return 42


async def fail() -> None:
    raise ValueError("raised on the otto loop")


def test_result_and_exception_cross_from_successive_foreign_loops() -> None:
    async def script() -> None:
        assert await loop.call(answer()) == 42
        with pytest.raises(ValueError, match="raised on the otto loop"):
            await loop.call(fail())

    asyncio.run(script())
    asyncio.run(script())  # a second asyncio.run, a new loop: the otto loop still serves it
    assert loop.wait(answer()) == 42
    with pytest.raises(ValueError, match="raised on the otto loop"):
        loop.wait(fail())


def test_cancel_before_the_otto_loop_starts_the_call_closes_the_coroutine() -> None:
    ran = []

    async def work() -> None:
        ran.append(True)

    release = threading.Event()
    loop.get_loop().call_soon_threadsafe(release.wait)  # the otto loop is busy until released

    async def script() -> None:
        task = asyncio.ensure_future(loop.call(work()))
        await asyncio.sleep(0)  # the call is queued on the otto loop, behind release.wait
        task.cancel()
        await asyncio.sleep(0)  # so is its cancellation
        release.set()
        with pytest.raises(asyncio.CancelledError):
            await task

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "coroutine ... was never awaited" would be a warning
        asyncio.run(script())
        assert loop.wait(answer()) == 42  # the otto loop went past both
    assert ran == []


def test_a_cancelled_command_from_a_script_leaves_the_session_usable() -> None:
    with LocalHost() as host:

        async def cancel_a_sleep() -> None:
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(host.run("sleep 30"), 0.5)

        asyncio.run(cancel_a_sleep())

        async def next_command() -> str:
            return (await host.run("echo still here")).only.output

        assert asyncio.run(next_command()) == "still here"
