"""Which lab, and which of its hosts: the choice the pytest plugin and ``otto`` share.

Both faces of pytest-otto pick the lab the same way (``--lab``, else ``$OTTO_LAB``,
else ``otto_lab`` from the pytest ini file, else one local host) and select hosts
the same way (``--host-pattern``, ``--tags``), with the same words for the same
mistakes. Nothing here connects to a host; every mistake is a `LabError` whose
message the caller prefixes (``pytest-otto:`` or ``otto:``) and turns into a usage
error (exit code 4).
"""

from __future__ import annotations

import configparser
import os
import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .config import LabError
from .lab import Lab, default_lab, load_lab

if TYPE_CHECKING:
    from .hosts.base import Host

__all__ = [
    "HOST_PATTERN_HELP",
    "OTTO_LAB_ENV",
    "TAGS_HELP",
    "LabChoice",
    "choose_lab",
    "find_ini_file",
    "ini_value",
    "list_ids",
    "open_lab",
    "parse_tags",
    "select_hosts",
    "selection_text",
]

#: Environment variable naming the lab file (between ``--lab`` and ini ``otto_lab``).
OTTO_LAB_ENV = "OTTO_LAB"

#: The help of ``--host-pattern`` / ``-p`` (pytest and ``otto``): one meaning, one text.
HOST_PATTERN_HELP = "Only the hosts whose id matches REGEX (re.search). No match is a usage error."
#: The help of ``--tags`` (pytest and ``otto``).
TAGS_HELP = (
    "Only the hosts that have every one of these tags (comma-separated; may be repeated; "
    "with --host-pattern: both apply). No match is a usage error."
)

#: Hosts listed in usage errors before "... and N more".
LIST_LIMIT = 30

#: Files pytest reads its settings from, in its order of preference within a folder,
#: and the section that makes one count ("" : the file counts as it is).
INI_FILES: tuple[tuple[str, str], ...] = (
    ("pytest.toml", ""),
    (".pytest.toml", ""),
    ("pytest.ini", ""),
    (".pytest.ini", ""),
    ("pyproject.toml", "[tool.pytest"),
    ("tox.ini", "[pytest]"),
    ("setup.cfg", "[tool:pytest]"),
)


@dataclass(frozen=True)
class LabChoice:
    """The lab file to load (None: the default local lab) and what named it.

    ``source`` is what a message says: ``--lab``, ``$OTTO_LAB``, ``ini otto_lab``
    or ``default``.
    """

    path: Path | None
    source: str


def find_ini_file(start: Path) -> Path | None:
    """The ini file pytest would find from ``start`` upwards when given no path arguments."""
    for folder in (start, *start.parents):
        for name, section in INI_FILES:
            candidate = folder / name
            try:
                if candidate.is_file() and (not section or section in candidate.read_text(errors="replace")):
                    return candidate.resolve()
            except OSError:
                continue
    return None


def ini_value(ini_file: Path, name: str) -> str | None:
    """The value of pytest ini option ``name`` in ``ini_file`` (any of pytest's formats), or None."""
    try:
        text = ini_file.read_text(errors="replace")
    except OSError:
        return None
    if ini_file.suffix == ".toml":
        try:
            data: Mapping[str, Any] = tomllib.loads(text)
        except tomllib.TOMLDecodeError:
            return None
        if ini_file.name == "pyproject.toml":
            tool = data.get("tool", {}).get("pytest", {})
            tables = [tool.get("ini_options", {}), tool]
        else:
            tables = [data.get("pytest", {})]
        for table in tables:
            value = table.get(name) if isinstance(table, Mapping) else None
            if isinstance(value, str):
                return value
        return None
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read_string(text)
    except configparser.Error:
        return None
    section = "tool:pytest" if ini_file.name == "setup.cfg" else "pytest"
    return parser.get(section, name, fallback=None)


def choose_lab(
    option: str | None,
    *,
    cwd: Path,
    ini: tuple[str, Path] | None = None,
    environ: Mapping[str, str] | None = None,
) -> LabChoice:
    """The lab file by precedence: ``option`` (``--lab``), ``$OTTO_LAB``, ini ``otto_lab``.

    ``option`` and the variable are relative to ``cwd``; ``ini`` is the ini option's
    value and the folder it is relative to (the ini file's). None of them: the default.
    """
    env = os.environ if environ is None else environ
    if option:
        return LabChoice(cwd / Path(option).expanduser(), "--lab")
    if env.get(OTTO_LAB_ENV):
        return LabChoice(cwd / Path(env[OTTO_LAB_ENV]).expanduser(), f"${OTTO_LAB_ENV}")
    if ini is not None and ini[0]:
        return LabChoice(ini[1] / Path(ini[0]).expanduser(), "ini otto_lab")
    return LabChoice(None, "default")


def open_lab(choice: LabChoice) -> Lab:
    """Load the chosen lab; `LabError` (saying what named the file) for a mistake or no hosts."""
    if choice.path is None:
        return default_lab()
    try:
        lab = load_lab(choice.path)
    except LabError as exc:
        raise LabError(f"{exc} (lab file given by {choice.source})") from None
    if not lab.hosts:  # a bench file that lost its hosts must not make a green run
        raise LabError(
            f"lab {lab.name!r} ({lab.path}) has no hosts; add a [hosts.<id>] table"
            f" (lab file given by {choice.source})"
        )
    return lab


def parse_tags(text: str | Sequence[str] | None) -> list[str]:
    """``"a,b"`` (or several such) as a list of tags; empty items dropped."""
    if text is None:
        return []
    items = [text] if isinstance(text, str) else list(text)
    return [tag.strip() for item in items for tag in item.split(",") if tag.strip()]


def selection_text(pattern: str | None, tags: Sequence[str] = ()) -> str | None:
    """``--host-pattern 'x' --tags 'a,b'``: the options that narrowed the selection, for
    messages and headers; None when every host is selected."""
    asked = [f"--host-pattern {pattern!r}"] if pattern is not None else []
    if tags:
        asked.append(f"--tags {','.join(tags)!r}")
    return " ".join(asked) or None


def list_ids(hosts: Iterable[Host]) -> str:
    """Host ids for a message, cut after `LIST_LIMIT`."""
    ids = [h.id for h in hosts]
    shown = ", ".join(ids[:LIST_LIMIT])
    if len(ids) > LIST_LIMIT:
        shown += f", ... and {len(ids) - LIST_LIMIT} more"
    return shown or "(none)"


def select_hosts(lab: Lab, pattern: str | None = None, tags: Sequence[str] = ()) -> list[Host]:
    """The hosts of ``lab`` matching ``pattern`` (``re.search`` on the id) with every tag.

    A bad regex, or a selection of no host, is a `LabError` listing the lab's hosts
    (and, for tags, the tags the lab has).
    """
    where = f"lab {lab.name!r}" + (f" ({lab.path})" if lab.path else "")
    if pattern is not None:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise LabError(
                f"--host-pattern {pattern!r} is not a valid regular expression ({exc}); "
                f"the hosts of {where} are: {list_ids(lab.hosts)}"
            ) from None
    selected = lab.select(pattern=pattern, tags=list(tags))
    if selected:
        return selected
    asked = (selection_text(pattern, tags) or "the selection").replace(" --tags", " with --tags")
    known = sorted({t for h in lab.hosts for t in h.tags})
    tag_note = f"; their tags: {', '.join(known) or '(none)'}" if tags else ""
    raise LabError(f"{asked} selects no host; the hosts of {where} are: {list_ids(lab.hosts)}{tag_note}")
