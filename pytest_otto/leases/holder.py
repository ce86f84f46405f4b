"""Who holds a lease: user, machine, process, start time and CI job.

A waiting job prints this, and every message about a busy device names it, so a
lab engineer can tell at a glance whether to wait, ask a colleague, or break a
lease left by a job that is gone.
"""

from __future__ import annotations

import getpass
import json
import os
import socket
import time
import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field

__all__ = ["Holder", "ci_job_url", "this_holder"]


def ci_job_url(env: Mapping[str, str] | None = None) -> str | None:
    """The URL of the CI job this process runs in, when the environment says so.

    GitLab (``CI_JOB_URL``), GitHub Actions (``GITHUB_SERVER_URL``,
    ``GITHUB_REPOSITORY``, ``GITHUB_RUN_ID``) and Jenkins (``BUILD_URL``).
    """
    env = os.environ if env is None else env
    if env.get("CI_JOB_URL"):
        return env["CI_JOB_URL"]
    github = [env.get(k, "") for k in ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_RUN_ID")]
    if all(github):
        return f"{github[0].rstrip('/')}/{github[1]}/actions/runs/{github[2]}"
    return env.get("BUILD_URL") or None


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry for our uid (containers)
        return str(os.getuid())


@dataclass(frozen=True)
class Holder:
    """The holder of a lease, as stored next to it (JSON).

    ``token`` is unique per acquisition: renewing or releasing compares it, so a
    run never renews or deletes a lease that is now someone else's.
    """

    user: str
    machine: str
    pid: int
    started: float  #: when the lease was taken (seconds since the epoch)
    job: str | None = None
    token: str = field(default_factory=lambda: uuid.uuid4().hex)

    @classmethod
    def unknown(cls) -> Holder:
        """A holder that did not say who it is (still writing its record, or unreadable)."""
        return cls(user="?", machine="?", pid=0, started=0.0, token="")

    @property
    def known(self) -> bool:
        """False for `unknown`: nothing to show but "someone"."""
        return bool(self.token)

    def to_json(self) -> str:
        """The stored form (compact JSON)."""
        return json.dumps(asdict(self), separators=(",", ":"), sort_keys=True)

    @classmethod
    def from_json(cls, text: str | bytes) -> Holder:
        """Read a stored holder; unreadable data becomes an "unknown" holder, not an error."""
        try:
            data = json.loads(text)
            return cls(
                user=str(data["user"]),
                machine=str(data["machine"]),
                pid=int(data["pid"]),
                started=float(data["started"]),
                job=data.get("job") or None,
                token=str(data.get("token", "")),
            )
        except (ValueError, KeyError, TypeError):
            return cls.unknown()

    def describe(self, now: float | None = None) -> str:
        """``alice@bench-pc pid 4242 since 18:52:03 UTC (2m05s ago), job URL``."""
        if not self.known:
            return "another run (who, it did not say)"
        now = time.time() if now is None else now
        since = time.strftime("%H:%M:%S UTC", time.gmtime(self.started))
        text = f"{self.user}@{self.machine} pid {self.pid} since {since} ({_ago(now - self.started)} ago)"
        return f"{text}, job {self.job}" if self.job else text

    def __str__(self) -> str:
        return self.describe()


def _ago(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def this_holder() -> Holder:
    """A new holder record for this process (a fresh token)."""
    return Holder(
        user=_user(), machine=socket.gethostname(), pid=os.getpid(), started=time.time(), job=ci_job_url()
    )
