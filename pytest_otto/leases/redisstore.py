"""Leases as Redis keys with a TTL: one key per device, for jobs on many runners.

``SET key holder NX PX ttl`` takes a lease; small Lua scripts renew and release it
only while the key still holds our own holder record (its token), so a run never
extends or deletes a lease that has become someone else's. A holder that dies or
freezes stops renewing and the key expires after the TTL. Works with Redis and
Valkey; uses redis-py's asyncio client (the optional extra ``pytest-otto[redis]``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import LeaseStoreError
from .holder import Holder
from .store import LeaseInfo, Renewal, shown_url

if TYPE_CHECKING:
    from ..config import Secret

__all__ = ["KEY_PREFIX", "RedisStore"]

#: Every lease key starts with this; the rest is the device name.
KEY_PREFIX = "otto:lease:"

#: Seconds to connect or to wait for a reply: an unreachable store is named quickly.
SOCKET_TIMEOUT = 5.0

#: Where a broken lease's holder record is kept, so that holder learns it was broken.
BROKEN_PREFIX = "otto:broken:"
#: How long a broken-lease mark is kept (a holder frozen longer re-takes a free device).
BROKEN_KEEP = 86400.0

# 1: ours and extended; -1: broken on purpose; 0: gone; else the holder that has it now.
_RENEW = """
local v = redis.call('GET', KEYS[1])
if v == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end
if v then return v end
if redis.call('GET', KEYS[2]) == ARGV[1] then return -1 end
return 0
"""
_BREAK = """
local v = redis.call('GET', KEYS[1])
if v then
  redis.call('DEL', KEYS[1])
  redis.call('SET', KEYS[2], v, 'PX', ARGV[1])
end
return v
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def _import_redis() -> Any:
    try:
        import redis.asyncio
    except ImportError:
        raise LeaseStoreError(
            None,
            None,
            None,
            "a redis:// lease store needs the redis package: pip install 'pytest-otto[redis]'",
        ) from None
    return redis.asyncio


class RedisStore:
    """Leases in a Redis (or Valkey) server; see the module's docstring."""

    expires = True

    def __init__(self, url: str, password: Secret | None = None) -> None:
        self.url = shown_url(url)
        module = _import_redis()
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        revealed = password.reveal("[lab]", "leases.password") if password is not None else None
        options: dict[str, Any] = {
            "socket_timeout": SOCKET_TIMEOUT,
            "socket_connect_timeout": SOCKET_TIMEOUT,
            "retry": Retry(NoBackoff(), 0),  # the lease loop retries on its own schedule
        }
        if revealed is not None:
            options["password"] = str(revealed)
        try:
            self._client = module.from_url(url, **options)
        except ValueError as exc:
            raise LeaseStoreError(None, None, None, f"lease store {self.url!r}: {exc}") from None
        self._renew = self._client.register_script(_RENEW)
        self._release = self._client.register_script(_RELEASE)
        self._break = self._client.register_script(_BREAK)

    async def _call(self, coro: Any) -> Any:
        """Run one command; a connection problem becomes a `LeaseStoreError` naming the URL."""
        import redis

        try:
            return await coro
        except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
            raise LeaseStoreError(
                None, None, None, f"cannot reach the lease store {self.url}: {exc}"
            ) from None
        except redis.ResponseError as exc:
            raise LeaseStoreError(None, None, None, f"lease store {self.url}: {exc}") from None

    async def take(self, device: str, holder: Holder, ttl: float) -> Holder | None:
        key = KEY_PREFIX + device
        while True:
            if await self._call(self._client.set(key, holder.to_json(), nx=True, px=_ms(ttl))):
                return None
            current = await self._call(self._client.get(key))
            if current is not None:  # else it expired between the two commands: try again
                return Holder.from_json(current)

    async def take_many(self, devices: list[str], holder: Holder, ttl: float) -> dict[str, Holder | None]:
        value, px = holder.to_json(), _ms(ttl)
        pipe = self._client.pipeline(transaction=False)
        for device in devices:
            pipe.set(KEY_PREFIX + device, value, nx=True, px=px)
        taken = await self._call(pipe.execute())
        busy = [device for device, ok in zip(devices, taken, strict=True) if not ok]
        found: dict[str, Holder | None] = {device: None for device in devices}
        if busy:
            values = await self._call(self._client.mget([KEY_PREFIX + device for device in busy]))
            for device, current in zip(busy, values, strict=True):
                # gone since (expired between the two commands): unknown, and tried again
                found[device] = Holder.from_json(current) if current is not None else Holder.unknown()
        return found

    async def release_many(self, devices: list[str], holder: Holder) -> None:
        if not devices:
            return
        pipe = self._client.pipeline(transaction=False)
        value = holder.to_json()
        for device in devices:
            await self._release(keys=[KEY_PREFIX + device], args=[value], client=pipe)  # queued
        await self._call(pipe.execute())

    async def renew(self, device: str, holder: Holder, ttl: float) -> Renewal:
        keys = [KEY_PREFIX + device, BROKEN_PREFIX + device]
        found = await self._call(self._renew(keys=keys, args=[holder.to_json(), _ms(ttl)]))
        if found == 1:
            return Renewal(held=True)
        if found == -1:
            return Renewal(held=False, broken=True)
        return Renewal(held=False, other=Holder.from_json(found) if found else None)

    async def release(self, device: str, holder: Holder) -> None:
        await self._call(self._release(keys=[KEY_PREFIX + device], args=[holder.to_json()]))

    async def holders(self) -> list[LeaseInfo]:
        keys = await self._call(self._keys())
        if not keys:
            return []
        pipe = self._client.pipeline(transaction=False)
        for key in keys:
            pipe.get(key)
            pipe.pttl(key)
        replies = await self._call(pipe.execute())
        found = []
        for key, value, pttl in zip(keys, replies[::2], replies[1::2], strict=True):
            if value is not None:
                device = key.decode()[len(KEY_PREFIX) :]
                found.append(LeaseInfo(device, Holder.from_json(value), max(pttl, 0) / 1000))
        return sorted(found, key=lambda info: info.device)

    async def _keys(self) -> list[bytes]:
        return [k async for k in self._client.scan_iter(match=KEY_PREFIX + "*", count=500)]

    async def break_lease(self, device: str) -> Holder | None:
        keys = [KEY_PREFIX + device, BROKEN_PREFIX + device]
        value = await self._call(self._break(keys=keys, args=[_ms(BROKEN_KEEP)]))
        return Holder.from_json(value) if value is not None else None

    async def close(self) -> None:
        await self._client.aclose()


def _ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))
