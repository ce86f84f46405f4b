"""``[hosts.X.power]`` of a lab file: checked at load time, built into a `PowerControl`.

Commands (run on the ``via`` host, the local machine by default)::

    [hosts.board1.power]
    via = "local"
    on = "pdu-ctl --outlet {vars.outlet} on"
    off = "pdu-ctl --outlet {vars.outlet} off"
    cycle = "pdu-ctl --outlet {vars.outlet} cycle"   # optional: off, off_delay, on
    status = "pdu-ctl --outlet {vars.outlet} status" # optional
    status_on = "ON"                                  # regex on status's output
    off_delay = 2.0

or QEMU's monitor: ``qmp = "unix:/run/boards/board1.qmp"`` (or ``"HOST:PORT"``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from .base import PowerControl
from .commands import CommandPower, placeholders
from .qmp import QmpPower, _endpoint

if TYPE_CHECKING:
    from ..hosts.base import Host

__all__ = ["POWER_KEYS", "check_power_table", "parse_power_section", "power_from_table"]

_COMMAND_KEYS = ("on", "off", "cycle", "status")
POWER_KEYS = ("via", *_COMMAND_KEYS, "status_on", "off_delay", "qmp")


def check_power_table(table: object, host_vars: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The checked table; ``ValueError("power.key: why")`` for the first mistake.

    With ``host_vars``, every ``{vars.NAME}`` the commands use must be one of them.
    """
    if not isinstance(table, dict):
        raise ValueError(f"power: expected a table, got {type(table).__name__}")
    for key in table:
        if key not in POWER_KEYS:
            raise ValueError(f"power.{key}: unknown key (one of {', '.join(POWER_KEYS)})")
    for key in ("via", *_COMMAND_KEYS, "status_on", "qmp"):
        if key in table and (not isinstance(table[key], str) or not table[key].strip()):
            raise ValueError(f"power.{key}: expected a non-empty string")
    if "qmp" in table:
        others = [k for k in table if k != "qmp"]
        if others:
            raise ValueError(f"power.qmp: QMP power takes no other keys (got {', '.join(others)})")
        try:
            _endpoint(table["qmp"])
        except ValueError as exc:
            raise ValueError(f"power.{exc}") from None
        return dict(table)
    missing = [k for k in ("on", "off") if k not in table]
    if missing:
        raise ValueError(f"power.{missing[0]}: missing (power needs on and off commands, or qmp)")
    if "status_on" in table:
        if "status" not in table:
            raise ValueError("power.status_on: needs a status command")
        try:
            re.compile(table["status_on"])
        except re.error as exc:
            raise ValueError(f"power.status_on: not a valid regular expression: {exc}") from None
    delay = table.get("off_delay", 1.0)
    if isinstance(delay, bool) or not isinstance(delay, (int, float)) or not 0 <= delay < math.inf:
        raise ValueError(f"power.off_delay: expected a number of seconds >= 0, got {delay!r}")
    for key in _COMMAND_KEYS if host_vars is not None else ():
        for name in placeholders(table.get(key, "")):
            if name.startswith("vars.") and name[5:] not in (host_vars or {}):
                raise ValueError(f"power.{key}: {{{name}}} is not in this host's vars")
    return dict(table)


def parse_power_section(value: object) -> dict[str, Any]:
    """The lab loader's parser of ``[hosts.X.power]`` (see `pytest_otto.registry`)."""
    return check_power_table(value)


def power_from_table(
    table: Mapping[str, Any], values: Mapping[str, Any], find_host: Callable[[str], Host]
) -> PowerControl:
    """The switch a checked table describes; ``find_host(id)`` finds the ``via`` host when used."""
    if "qmp" in table:
        return QmpPower(table["qmp"])
    via = table.get("via", "local")
    return CommandPower(
        lambda: find_host(via),
        on=table["on"],
        off=table["off"],
        cycle=table.get("cycle"),
        status=table.get("status"),
        status_on=table.get("status_on"),
        off_delay=float(table.get("off_delay", 1.0)),
        values=values,
        via_name=via,
    )
