"""What the docs tell a new user, followed literally, matches the package.

The code blocks of docs/getting-started.md run against hardware a reader has and we
do not (routers, a serial board); what can be checked here is that they agree with
each other and with the loader: the page's lab file loads, and every ``host.vars`` key
its tests read is set in that lab for the hosts those tests select.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pytest_otto import load_lab

ROOT = Path(__file__).resolve().parent.parent
GETTING_STARTED = ROOT / "docs" / "getting-started.md"


def _blocks(page: Path, language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", page.read_text(), flags=re.S | re.M)


def test_getting_started_lab_has_the_vars_its_tests_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (lab_text,) = [b for b in _blocks(GETTING_STARTED, "toml") if "[hosts." in b]
    path = tmp_path / "lab.toml"
    path.write_text(lab_text)
    lab = load_lab(path)
    read = [
        (tags, key)
        for block in _blocks(GETTING_STARTED, "python")
        for tags, body in re.findall(r"otto_hosts\(tags=\[(.*?)\]\)\n(.*?)(?=\n\n\n|\Z)", block, flags=re.S)
        for key in re.findall(r"\.vars\[['\"](\w+)['\"]\]", body)
    ]
    assert read, "the page's tests no longer read host.vars: update this test"
    for tags, key in read:
        wanted = re.findall(r"['\"](\w+)['\"]", tags)
        hosts = lab.select(tags=wanted)
        assert hosts, f"no host of the page's lab has tags {wanted}"
        for host in hosts:
            assert key in host.vars, f"{host.id} has no vars[{key!r}] in the page's lab"


@pytest.mark.parametrize("page", [*sorted(p.name for p in (ROOT / "docs").glob("*.md")), "../README.md"])
def test_docs_install_pytest_otto_from_where_it_is(page: str) -> None:
    """pytest-otto is not on PyPI: `pip install pytest-otto` would fail, or install someone else's."""
    text = (ROOT / "docs" / page).read_text()
    assert not re.search(r"pip install\b[^\n]*(?<![/\w.-])pytest-otto(?![/\w.-])", text), page
