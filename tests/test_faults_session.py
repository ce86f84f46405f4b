"""The fault suite, the shell session's side (issue 20.6): what a slow shell, a killed
pytest, a lost lease or a reset leave behind, against real shells and consoles."""

from __future__ import annotations

import pytest

from pytest_otto import LocalHost
from pytest_otto.session import PROBE_RESEND_INTERVAL

pytestmark = [pytest.mark.faults]


# -- a probe typed again never answers into a command's output -------------------------------


@pytest.mark.parametrize("pty", [False, True], ids=["pipes", "pty"])
async def test_a_probe_typed_again_leaves_no_answer_in_the_first_output(pty: bool) -> None:
    """A shell that starts reading well after the first probe (a loaded machine, a slow
    login) reads the probe twice, as it was typed again: the second answer comes after
    the first, and used to land in the first command's output on pipes."""
    late = f"sleep {PROBE_RESEND_INTERVAL * 2.5}; exec bash --norc --noprofile" + (" -i" if pty else "")
    host = LocalHost(shell=["bash", "-c", late], pty=pty, connect_timeout=30)
    try:
        assert (await host.run("echo first")).only.output == "first"
        assert (await host.run("echo second")).only.output == "second"
    finally:
        await host.close()
