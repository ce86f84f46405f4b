"""How ``otto`` prints: tables and blocks for people, one JSON document for scripts.

Colour only when the stream is a terminal (and ``NO_COLOR`` is unset, ``TERM`` is
not ``dumb``). Every text that reaches the user goes through `Masker`, so a lab
secret never shows, whatever message it hides in.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Sequence
from typing import Any, TextIO

from ..lab import Lab
from ..transcript import mask_secrets

__all__ = ["Masker", "Printer"]

_COLOURS = {"green": "32", "red": "31", "yellow": "33", "bold": "1", "dim": "2"}


class Masker:
    """Masks the lab's secret values (passwords, read from the environment if set)."""

    def __init__(self, lab: Lab | None) -> None:
        self.secrets: list[str] = []
        config = lab.config if lab is not None else None
        for cfg in config.hosts if config is not None else ():
            self._add(getattr(cfg, "password", None), cfg.id)
        self._add(_lease_password(lab), "leases")

    def _add(self, secret: Any, owner: str) -> None:
        if secret is None:
            return
        try:
            value = secret.reveal(owner, "password")
        except Exception:
            return  # unset variable: nothing to mask (the host is misconfigured)
        if value and value not in self.secrets:
            self.secrets.append(value)

    def __call__(self, value: Any) -> Any:
        """``value`` with every secret masked (strings inside lists and dicts too)."""
        if isinstance(value, str):
            return mask_secrets(str(value), self.secrets)
        if isinstance(value, dict):
            return {k: self(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self(v) for v in value]
        return value


def _lease_password(lab: Lab | None) -> Any:
    """The lease store's password (a `Secret`), if the lab file gives one."""
    if lab is None or lab.config is None:
        return None
    from ..leases import lease_settings

    try:
        return lease_settings(lab.config).password
    except Exception:
        return None  # a bad leases key is reported where the leases are used


def use_colour(stream: TextIO) -> bool:
    """Colour for people at a terminal only."""
    if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


class Printer:
    """Writes masked text to stdout (results) and stderr (progress, errors)."""

    def __init__(self, mask: Masker, *, json_mode: bool = False, out: TextIO | None = None) -> None:
        self.mask = mask
        self.json_mode = json_mode
        self.out = out or sys.stdout
        self.err = sys.stderr
        self.colour = use_colour(self.out)

    def paint(self, text: str, colour: str) -> str:
        """``text`` in ``colour`` when printing to a terminal."""
        if not self.colour or colour not in _COLOURS:
            return text
        return f"\x1b[{_COLOURS[colour]}m{text}\x1b[0m"

    def line(self, text: str = "") -> None:
        """One line of human output (not in JSON mode)."""
        if not self.json_mode:
            print(self.mask(text), file=self.out, flush=True)

    def error(self, text: str) -> None:
        """A message for the user on stderr."""
        print(f"otto: {self.mask(text)}", file=self.err, flush=True)

    def note(self, text: str) -> None:
        """A line for the user on stderr, as it is (lease waits: ``otto leases: waiting ...``)."""
        print(self.mask(text), file=self.err, flush=True)

    def document(self, data: Any) -> None:
        """The JSON document (JSON mode only)."""
        if self.json_mode:
            json.dump(self.mask(data), self.out, indent=2, default=str)
            self.out.write("\n")
            self.out.flush()

    def table(
        self,
        headers: Sequence[str],
        rows: Iterable[Sequence[str]],
        *,
        painted: int | None = None,
        colours: Sequence[str] = (),
    ) -> None:
        """A left-aligned table; column ``painted`` of row ``i`` in ``colours[i]`` (on a terminal)."""
        cells = [[self.mask(str(c)) for c in row] for row in rows]
        widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
        self.line(self.paint(_join(headers, widths), "bold"))
        for index, row in enumerate(cells):
            if painted is not None and index < len(colours):
                width = widths[painted]
                row = [*row]
                row[painted] = self.paint(row[painted], colours[index]) + " " * (width - len(row[painted]))
                widths_here = [*widths]
                widths_here[painted] = 0  # padded already; escape codes have no width
                self.line(_join(row, widths_here))
            else:
                self.line(_join(row, widths))


def _join(cells: Sequence[str], widths: Sequence[int]) -> str:
    """Cells padded to their column's width, two spaces apart; the last one unpadded."""
    last = len(cells) - 1
    return "  ".join(cell if i == last else cell.ljust(widths[i]) for i, cell in enumerate(cells)).rstrip()
