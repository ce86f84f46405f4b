"""Every "B13" or "pitfall 12" the repository cites is a statement of docs/behaviour.md,
and nothing points at a contract file outside the repository."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BEHAVIOUR = ROOT / "docs" / "behaviour.md"

#: "B13" in prose (not ``termios.B115200`` nor a lint code such as ``B018``), "_b13" in a test name.
STATEMENT = re.compile(r"(?<![\w.])B(\d{1,2})\b|_b(\d{1,2})\b")
PITFALL = re.compile(r"(?i)\bpitfalls? (\d+(?:(?:, | and )\d+)*)")


def cited_files() -> list[Path]:
    files = [ROOT / "README.md", ROOT / "conftest.py", ROOT / "lab.toml.example"]
    for folder in ("pytest_otto", "tests", "testlab", "benchmarks", "docs", "examples", "scripts"):
        files += [p for p in (ROOT / folder).rglob("*") if p.suffix in (".py", ".md", ".toml", "")]
    return [p for p in files if p.is_file() and p != BEHAVIOUR]


def documented() -> tuple[set[int], set[int]]:
    text = BEHAVIOUR.read_text()
    statements = {int(n) for n in re.findall(r"^- \*\*B(\d+)\.\*\*", text, re.M)}
    pitfalls_part = text.split("## Pitfalls", 1)[1]
    pitfalls = {int(n) for n in re.findall(r"^(\d+)\. \*\*", pitfalls_part, re.M)}
    return statements, pitfalls


def test_the_contract_lists_b1_to_b30_and_16_pitfalls() -> None:
    statements, pitfalls = documented()
    assert statements == set(range(1, 31))
    assert pitfalls == set(range(1, 17))


def test_every_cited_statement_and_pitfall_is_in_the_contract() -> None:
    statements, pitfalls = documented()
    unknown: list[str] = []
    for path in cited_files():
        text = path.read_text(errors="replace")
        for match in STATEMENT.finditer(text):
            number = int(match.group(1) or match.group(2))
            if number not in statements:
                unknown.append(f"{path.relative_to(ROOT)}: {match.group(0)}")
        for match in PITFALL.finditer(text):
            for number in map(int, re.findall(r"\d+", match.group(1))):
                if number not in pitfalls:
                    unknown.append(f"{path.relative_to(ROOT)}: pitfall {number}")
    assert not unknown, unknown


def test_no_reference_to_a_contract_outside_the_repository() -> None:
    outside = re.compile(r"\bspec/|docs/spec\b|/work/shared")
    files = [p for p in cited_files() if p != Path(__file__).resolve()]
    found = [str(p.relative_to(ROOT)) for p in files if outside.search(p.read_text(errors="replace"))]
    assert not found, found
