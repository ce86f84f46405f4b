"""The ``console`` examples of docs/cli.md, run as written with the installed ``otto``.

The page's ``# lab.toml`` block is written to a fresh folder; every ``$ `` line of
every ``console`` block then runs, in page order, in one ``bash`` (so ``export``
carries over), and what it prints (stdout and stderr) must match the lines below
it, with doctest's ``...`` and whitespace rules. ``text`` blocks are not run.
"""

from __future__ import annotations

import doctest
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

DOC = Path(__file__).parent.parent / "docs" / "cli.md"
_FENCE = re.compile(r"^```(\w+)\n(.*?)^```$", re.M | re.S)
_CHECKER = doctest.OutputChecker()
_FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def doc_blocks(kind: str) -> list[str]:
    """The page's fenced blocks of one language, in order."""
    return [body for lang, body in _FENCE.findall(DOC.read_text()) if lang == kind]


def examples() -> list[tuple[str, str]]:
    """``(command, expected output)`` for every ``$ `` line of the console blocks."""
    found: list[tuple[str, str]] = []
    for block in doc_blocks("console"):
        for chunk in re.split(r"^\$ ", block, flags=re.M)[1:]:
            command, _, expected = chunk.partition("\n")
            found.append((command, expected))
    return found


def test_the_page_has_examples() -> None:
    commands = [command for command, _ in examples()]
    assert len(commands) >= 15
    for name in (
        "check",
        "run",
        "put",
        "get",
        "lab show",
        "lab check-file",
        "--json",
        "lease list",
        "lease break",
    ):
        assert any(f"otto {name}" in c or f"otto --json {name}" in c or name in c for c in commands), name


def test_examples_run_as_written(tmp_path: Path) -> None:
    (lab_block,) = [b for b in doc_blocks("toml") if b.startswith("# lab.toml\n")]
    (tmp_path / "lab.toml").write_text(lab_block)
    cases = examples()
    # the marker must not change $? for an example that prints it
    script = "".join(
        f"s=$?; echo '@@example {i}@@'; (exit $s)\n{{ {command}\n}} 2>&1\n"
        for i, (command, _) in enumerate(cases)
    )
    env = {k: v for k, v in os.environ.items() if k not in ("OTTO_LAB", "ROUTER1_PASSWORD", "NO_COLOR")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    # the page's leases in a folder of its own: another run of this test cannot hold its devices
    env["OTTO_LEASES"] = f"file://{tmp_path}/leases"
    result = subprocess.run(
        ["bash", "--norc", "--noprofile", "-c", script],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    outputs = re.split(r"^@@example \d+@@\n", result.stdout, flags=re.M)[1:]
    assert len(outputs) == len(cases), result.stdout + result.stderr
    for (command, expected), got in zip(cases, outputs, strict=True):
        if not _CHECKER.check_output(expected, got, _FLAGS):
            pytest.fail(f"$ {command}\nexpected:\n{expected}\ngot:\n{got}", pytrace=False)
