import pytest

from orchestrator.sessions import SessionLimitReached, SessionRegistry


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_sessions_expire_after_their_idle_ttl() -> None:
    clock = Clock()
    registry = SessionRegistry(ttl_s=60, history_max_turns=5, clock=clock)
    session = registry.create(tutor_id=1, student_id=7, kb_id=None)
    clock.now += 59
    assert registry.get(session.id) is session
    registry.touch(session)
    clock.now += 59
    assert registry.get(session.id) is session  # activity restarted the clock
    clock.now += 2
    assert registry.get(session.id) is None
    assert session.status == "expired"


def test_a_connected_session_does_not_expire() -> None:
    clock = Clock()
    registry = SessionRegistry(ttl_s=10, history_max_turns=5, clock=clock)
    session = registry.create(1, 7, None)
    session.connections = 1
    clock.now += 100
    assert registry.expire_idle() == []
    session.connections = 0
    assert registry.expire_idle() == [session.id]


def test_deleting_forgets_the_session() -> None:
    registry = SessionRegistry(ttl_s=10, history_max_turns=5)
    session = registry.create(1, 7, "kb")
    assert registry.delete(session.id)
    assert not registry.delete(session.id)
    assert registry.get(session.id) is None
    assert session.status == "deleted"


async def test_history_is_bounded_and_ownership_is_by_student() -> None:
    registry = SessionRegistry(ttl_s=10, history_max_turns=2)
    session = registry.create(1, 7, None)
    for turn in range(5):
        await session.remember(f"q{turn}", f"a{turn}")
    assert [t.content for t in session.history] == ["q3", "a3", "q4", "a4"]
    assert session.belongs_to("7") and not session.belongs_to("8")


def test_the_registry_refuses_sessions_past_its_limit() -> None:
    registry = SessionRegistry(ttl_s=10, history_max_turns=2, max_sessions=2)
    registry.create(1, 1, None)
    registry.create(1, 2, None)
    with pytest.raises(SessionLimitReached):
        registry.create(1, 3, None)
