"""Which engine serves each student, recorded in Redis so that every engine agrees.

A student stays on their engine while it is alive and not draining. Otherwise they go to the
engine asking for them (a socket that reached it, when it may serve them) or to the live engine
with the fewest students; one Lua script reads and records the choice, so two engines placing
the same student at once cannot both win. An engine's load is the students placed on it whose
placement has not lapsed (the engine renews those it serves).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from redis.asyncio import Redis

from orchestrator.cluster.keys import Keys, text

# KEYS: [1] the student's placement, [2] the set of engines.
# ARGV: [1] key prefix, [2] student, [3] now (ms), [4] how long a placement holds (ms),
#       [5] the engine to prefer when the student must move ("" for the least loaded),
#       [6] an engine the front door found down ("" for none): its students move.
# Returns {engine, 1 if the student was (re)placed now else 0}, or {} when no engine can serve.
_PLACE = """
local prefix, student = ARGV[1], ARGV[2]
local now, hold = tonumber(ARGV[3]), tonumber(ARGV[4])
local function usable(id)
  return id and id ~= ARGV[6] and redis.call('HGET', prefix .. ':engine:' .. id, 'draining') == '0'
end
local current = redis.call('GET', KEYS[1])
if usable(current) then
  redis.call('PEXPIRE', KEYS[1], hold)
  redis.call('ZADD', prefix .. ':students:' .. current, now + hold, student)
  return {current, 0}
end
local chosen = nil
if ARGV[5] ~= '' and usable(ARGV[5]) then
  chosen = ARGV[5]
else
  local fewest = nil
  for _, id in ipairs(redis.call('SMEMBERS', KEYS[2])) do
    local students = prefix .. ':students:' .. id
    if usable(id) then
      redis.call('ZREMRANGEBYSCORE', students, '-inf', now)
      local load = redis.call('ZCARD', students)
      if fewest == nil or load < fewest or (load == fewest and id < chosen) then
        fewest, chosen = load, id
      end
    elseif redis.call('EXISTS', prefix .. ':engine:' .. id) == 0 then
      redis.call('SREM', KEYS[2], id)
      redis.call('DEL', students)
    end
  end
end
if not chosen then
  return {}
end
if current then
  redis.call('ZREM', prefix .. ':students:' .. current, student)
end
redis.call('SET', KEYS[1], chosen, 'PX', hold)
redis.call('ZADD', prefix .. ':students:' .. chosen, now + hold, student)
return {chosen, 1}
"""


class NoEngine(Exception):
    """No live engine that is not draining: nobody can take the student now."""


@dataclass(frozen=True)
class Placed:
    engine_id: str
    moved: bool  # placed just now (new, or off an engine that died or drains)


class Placement:
    def __init__(self, redis: Redis, keys: Keys, hold_s: float) -> None:
        self._redis = redis
        self._keys = keys
        self._hold_ms = int(hold_s * 1000)
        self._place = redis.register_script(_PLACE)

    async def place(
        self, student: str, prefer: str | None = None, down: str | None = None
    ) -> Placed:
        """The student's engine: theirs if it can serve, else `prefer` if it can, else the
        least loaded one. `down`: an engine to treat as dead (the front door cannot reach it,
        though its heartbeat has not lapsed yet)."""
        answer = await self._place(
            keys=[self._keys.placement(student), self._keys.engines],
            args=[self._keys.prefix, student, _now_ms(), self._hold_ms, prefer or "", down or ""],
        )
        if not answer:
            raise NoEngine("no engine can take a student now: all are draining or gone")
        engine_id, moved = answer
        return Placed(text(engine_id), bool(moved))

    async def owner(self, student: str) -> str | None:
        engine_id = await self._redis.get(self._keys.placement(student))
        return text(engine_id) if engine_id is not None else None

    async def renew(self, engine_id: str, students: list[str]) -> list[str]:
        """Keeps the placements of the students this engine serves now from lapsing; places
        those who lost theirs (Redis lost it) here again; returns those placed elsewhere (this
        engine's heartbeat stalled and they moved: this engine must let them go)."""
        if not students:
            return []
        placements = await self._redis.mget([self._keys.placement(s) for s in students])
        ours = [s for s, p in zip(students, placements, strict=True) if p == engine_id]
        elsewhere = [
            s for s, p in zip(students, placements, strict=True) if p not in (None, engine_id)
        ]
        for student, placement in zip(students, placements, strict=True):
            if placement is None:
                await self.place(student, engine_id)
        if not ours:
            return elsewhere
        until = _now_ms() + self._hold_ms
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.zadd(self._keys.students(engine_id), dict.fromkeys(ours, until))
            for student in ours:
                pipe.pexpire(self._keys.placement(student), self._hold_ms)
            await pipe.execute()
        return elsewhere

    async def load(self, engine_id: str) -> int:
        """How many students are placed on an engine now."""
        return int(await self._redis.zcount(self._keys.students(engine_id), _now_ms(), "+inf"))


def _now_ms() -> int:
    return int(time.time() * 1000)
