"""Print pip constraints that pin every direct dependency to its declared lower bound.

CI installs the project with these (`pip install -c`), so the suite also runs against
the oldest releases pyproject.toml admits, as `uv --resolution lowest-direct` would
choose them: a lower bound that no longer holds fails CI instead of a user's install.
Dependencies of dependencies stay free (the newest that fit), as for a user.

Usage: python3 .ci/oldest_constraints.py [EXTRA ...] > constraints.txt
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*([^;]*)")


def lower_bound(requirement: str) -> tuple[str, str]:
    """``("name", "version")`` of a requirement's ``>=`` bound; an error when it has none."""
    match = REQUIREMENT.match(requirement)
    if not match:
        raise SystemExit(f"oldest_constraints: cannot read requirement {requirement!r}")
    name, spec = match[1], match[2]
    bound = re.search(r">=\s*([^,\s]+)", spec)
    if not bound:
        raise SystemExit(f"oldest_constraints: {requirement!r} has no lower bound (>=): declare one")
    return name, bound[1]


def main(extras: list[str]) -> None:
    project = tomllib.loads((Path(__file__).resolve().parent.parent / "pyproject.toml").read_text())["project"]
    requirements = list(project["dependencies"])
    for extra in extras:
        requirements += project["optional-dependencies"][extra]
    for requirement in requirements:
        name, version = lower_bound(requirement)
        print(f"{name}=={version}")


if __name__ == "__main__":
    main(sys.argv[1:])
