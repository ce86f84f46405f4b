"""Power control of hosts: commands on a lab host (a PDU, a relay) or QEMU's QMP monitor.

A host gets its switch from ``[hosts.X.power]`` (see `config`) or in code
(``host.power_control = QmpPower("unix:/run/b1.qmp")``); `Host.power`,
`Host.power_status` and `Host.reboot` use it.
"""

from .base import ACTIONS, PowerControl, PowerError
from .commands import CommandPower
from .config import POWER_KEYS, check_power_table, power_from_table
from .qmp import QmpPower, qmp_execute

__all__ = [
    "ACTIONS",
    "POWER_KEYS",
    "CommandPower",
    "PowerControl",
    "PowerError",
    "QmpPower",
    "check_power_table",
    "power_from_table",
    "qmp_execute",
]
