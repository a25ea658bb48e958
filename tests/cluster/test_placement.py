"""Placement, heartbeats and shared session records against a real Redis, without engines."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime

import pytest
import pytest_asyncio

from benchmarks.harness.cluster import RedisProcess
from orchestrator.brain.base import ChatTurn
from orchestrator.cluster.membership import Load
from orchestrator.cluster.node import ClusterNode, NodeSettings
from orchestrator.cluster.placement import NoEngine
from orchestrator.cluster.records import SessionRecord
from orchestrator.sessions import SessionRegistry

IDLE = Load(sockets=0, peers=0, replies=0, capacity=8)


@pytest_asyncio.fixture
async def nodes(redis_server: RedisProcess) -> AsyncIterator[Callable[..., object]]:
    """Makes engines (ClusterNode) under a fresh key prefix; each has beaten once."""
    prefix = f"test-{uuid.uuid4().hex[:8]}"
    made: list[ClusterNode] = []

    async def make(*ids: str, dead_after_s: float = 60.0) -> list[ClusterNode]:
        for engine_id in ids:
            node = await ClusterNode.join(
                NodeSettings(
                    redis_url=redis_server.url,
                    prefix=prefix,
                    engine_id=engine_id,
                    public_url=f"ws://front/e/{engine_id}",
                    heartbeat_s=0.1,
                    dead_after_s=dead_after_s,
                    session_ttl_s=60,
                    history_len=4,
                    revoke_for_s=60,
                )
            )
            await node.membership.beat(IDLE)
            made.append(node)
        return made[-len(ids) :]

    yield make
    for node in made:
        await node.redis.aclose()


async def test_students_spread_evenly_and_stay_put(nodes) -> None:  # type: ignore[no-untyped-def]
    a, b, c = await nodes("a", "b", "c")
    placed = await asyncio.gather(*(a.place(f"s{i}") for i in range(30)))
    engines = [p.engine_id for p in placed]
    assert {e: engines.count(e) for e in "abc"} == {"a": 10, "b": 10, "c": 10}
    assert all(p.moved for p in placed)
    again = [await node.place(f"s{i}") for i, node in zip(range(30), [b, c, a] * 10, strict=True)]
    assert [p.engine_id for p in again] == engines and not any(p.moved for p in again)
    assert [await a.placement.load(e) for e in "abc"] == [10, 10, 10]


async def test_one_student_placed_at_once_by_many_engines_lands_once(nodes) -> None:  # type: ignore[no-untyped-def]
    engines = await nodes("a", "b", "c")
    for i in range(20):
        placed = await asyncio.gather(
            *(node.place(f"race{i}", here=True) for node in engines for _ in range(3))
        )
        assert len({p.engine_id for p in placed}) == 1, placed
        assert sum(p.moved for p in placed) == 1
    loads = [await engines[0].placement.load(e) for e in "abc"]
    assert sum(loads) == 20


async def test_a_draining_or_dead_engine_gets_nobody_and_loses_its_students(nodes) -> None:  # type: ignore[no-untyped-def]
    a, b = await nodes("a", "b")
    (short,) = await nodes("c", dead_after_s=0.3)
    first = await a.place("x", here=True)
    assert first.engine_id == "a"
    await a.drain(IDLE)
    assert all([(await b.place(f"n{i}")).engine_id != "a" for i in range(5)])
    moved = await b.place("x", here=True)
    assert moved.engine_id == "b" and moved.moved
    # c dies (its heartbeat lapses): its students go elsewhere, and it is forgotten
    assert (await short.place("y", here=True)).engine_id == "c"
    await asyncio.sleep(0.5)
    assert await b.url_of("c") is None
    after = await b.place("y")
    assert after.engine_id == "b" and after.moved
    # nobody left who may serve
    await b.drain(IDLE)
    with pytest.raises(NoEngine):
        await b.place("z")


async def test_a_restarted_engine_does_not_pull_students_back(nodes) -> None:  # type: ignore[no-untyped-def]
    (a,) = await nodes("a", dead_after_s=0.3)
    (b,) = await nodes("b")
    assert (await a.place("x", here=True)).engine_id == "a"
    await asyncio.sleep(0.5)  # a died
    assert (await b.place("x", here=True)).engine_id == "b"
    await a.membership.beat(IDLE)  # a is back
    placed = await a.place("x", here=True)
    assert placed.engine_id == "b" and not placed.moved


async def test_session_records_carry_history_and_deletion_across_engines(nodes) -> None:  # type: ignore[no-untyped-def]
    a, b = await nodes("a", "b")
    here = SessionRegistry(60, history_max_turns=2, shared=a.records)
    there = SessionRegistry(60, history_max_turns=2, shared=b.records)
    session = await here.open(1, "s1", "science")
    assert here.get(session.id) is None  # recorded for the student's engine, not held here
    loaded = await there.load(session.id)
    assert loaded is not None and loaded.kb_id == "science" and loaded.student_id == "s1"
    for turn in range(3):
        await loaded.remember(f"q{turn}", f"a{turn}")
    again = await SessionRegistry(60, 2, shared=a.records).load(session.id)
    assert again is not None
    assert [t.content for t in again.history] == ["q1", "a1", "q2", "a2"]
    assert await here.close(session.id)
    assert await there.is_revoked(session.id)
    assert await SessionRegistry(60, 2, shared=b.records).load(session.id) is None
    assert not await here.close(session.id)
    # records deleted elsewhere are noticed by the engine renewing them (the first one
    # too: this registry never heard of its deletion)
    other = await there.open(1, "s2", None)
    assert await there.load(other.id) is not None
    await a.records.delete(other.id)
    used = there.in_use()
    assert sorted(await b.records.renew(used)) == sorted([session.id, other.id])
    assert there.in_use() == used  # not renewed until told so (a failed renewal is retried)
    there.renewed()
    assert there.in_use() == []  # nothing used since


async def test_a_record_round_trips(nodes) -> None:  # type: ignore[no-untyped-def]
    (a,) = await nodes("a")
    now = datetime.now(UTC)
    record = SessionRecord("r1", 13, 42, None, now, now, ())
    await a.records.save(record)
    await a.records.remember("r1", [ChatTurn("user", "hi"), ChatTurn("assistant", "hello")])
    loaded = await a.records.load("r1")
    assert loaded is not None
    assert (loaded.tutor_id, loaded.student_id, loaded.kb_id) == (13, 42, None)
    assert loaded.created_at == now
    assert [t.role for t in loaded.history] == ["user", "assistant"]
    await a.records.remember("gone", [ChatTurn("user", "hi")])
    assert await a.records.load("gone") is None
    assert await a.records.renew([("gone", now)]) == ["gone"]
    assert not await a.redis.exists(a.keys.session("gone"), a.keys.history("gone"))


async def test_the_front_door_finding_an_engine_down_moves_its_students_at_once(nodes) -> None:  # type: ignore[no-untyped-def]
    a, b = await nodes("a", "b")
    assert (await a.place("x", here=True)).engine_id == "a"
    kept = await b.place("x", here=True)  # a's heartbeat is fresh: x stays
    assert kept.engine_id == "a" and not kept.moved
    taken = await b.place("x", here=True, down="a")  # the front door cannot reach a
    assert taken.engine_id == "b" and taken.moved
    assert (
        await a.place("x", here=True, down="a")
    ).engine_id == "b"  # an engine is not down to itself
    # a, still beating, learns it must let x go; a student whose placement Redis lost is
    # placed again on the engine serving it
    assert await a.placement.renew("a", ["x"]) == ["x"]
    await a.redis.delete(a.keys.placement("y"))
    assert await a.placement.renew("a", ["y"]) == []
    assert await a.placement.owner("y") == "a"
