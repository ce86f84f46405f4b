"""The oldest-versions CI run (.ci/run) runs a list of tests, .ci/oldest-tests: it must
still prove every lower bound pyproject.toml declares.

The list is checked against pyproject.toml itself: each test cited there as the reason
for a bound is on it, and each dependency with a lower bound is used by a module on it
(found by what the module's source names: an import, a fixture, an option). A new
dependency fails here until a listed test exercises it, or it is named a tool below.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LIST = ROOT / ".ci" / "oldest-tests"

pytestmark = pytest.mark.skipif(not LIST.is_file(), reason="no .ci/ here (an sdist): CI runs from a checkout")

#: distribution -> what a test module that exercises it names (a regular expression)
EXERCISED_BY = {
    "pytest": r"\bpytester\b",
    "pytest-asyncio": r"^async def test_",
    "asyncssh": r"\bRemoteHost\b",
    "tomli-w": r"\btomli_w\b|\bwrite_lab_toml\b",
    "redis": r"\bRedisServer\b|\bredis://",
    "pexpect": r"\bpexpect\b",
    "hypothesis": r"^from hypothesis import|^import hypothesis",
    "pytest-xdist": r'"-n"|\bxdist\b',
    "build": r'"build"',
    "pytest-testinfra": r"\btestinfra\b",
    "pytest-timeout": r"--timeout\b|\btimeout\b.*-p",
    "pytest-html": r"--html\b",
    "allure-pytest": r"--alluredir\b",
}
#: Lower-bounded tools the oldest run does not run, and why.
TOOLS = {
    "ruff": "scripts/test lints in the newest environment; a ruff minor changes findings, not the package",
    "mypy": "scripts/test type-checks in the newest environment",
}


def listed_modules() -> list[Path]:
    lines = (line.split("#", 1)[0].strip() for line in LIST.read_text().splitlines())
    return [ROOT / line for line in lines if line]


def lower_bounded() -> dict[str, str]:
    """Every direct dependency (runtime, extras) with a lower bound -> its requirement line."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        requirements += extra
    found = {}
    for requirement in requirements:
        name = re.match(r"[A-Za-z0-9._-]+", requirement)
        if name and ">=" in requirement:
            found[name[0].lower()] = requirement
    return found


def test_every_listed_test_module_exists() -> None:
    modules = listed_modules()
    assert modules, "the oldest run would run nothing"
    missing = [str(m.relative_to(ROOT)) for m in modules if not m.is_file()]
    assert not missing, f".ci/oldest-tests lists modules that do not exist: {missing}"
    assert "oldest-tests" in (ROOT / ".ci" / "run").read_text(), ".ci/run does not use the list"


def test_every_test_pyproject_cites_for_a_bound_runs_in_the_oldest_run() -> None:
    """pyproject.toml names the test that fails below a bound (or its name's start): it must run there."""
    text = (ROOT / "pyproject.toml").read_text()
    start, end = text.index("dependencies = ["), text.index("[project.scripts]")
    cited = set(re.findall(r"#.*?\b(test_[a-z0-9_]+)", text[start:end]))
    sources = {m.stem: m.read_text() for m in listed_modules()}
    for name in sorted(cited):
        assert name in sources or any(re.search(rf"def {name}", s) for s in sources.values()), (
            f"pyproject.toml cites {name} for a lower bound, but no module in .ci/oldest-tests has it"
        )


def test_every_lower_bound_is_exercised_by_a_listed_module() -> None:
    sources = "\n".join(m.read_text() for m in listed_modules())
    for name, requirement in lower_bounded().items():
        if name in TOOLS:
            continue
        assert name in EXERCISED_BY, (
            f"{requirement!r} has a lower bound: say in tests/test_ci.py what exercises it, "
            "and list a module that does in .ci/oldest-tests"
        )
        assert re.search(EXERCISED_BY[name], sources, re.MULTILINE), (
            f"no module in .ci/oldest-tests exercises {name} (looked for {EXERCISED_BY[name]!r})"
        )
