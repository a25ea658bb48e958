"""A student talking hands-free, for tests and benchmarks: a user socket, a live peer whose
audio m-line carries their microphone, `listen` sent, and every message the engine sends
kept with the moment it arrived."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

from benchmarks.harness.client import receive, send, until
from benchmarks.harness.microphone import Microphone
from benchmarks.harness.processes import EngineProcess
from benchmarks.harness.speech import piper_speech
from benchmarks.harness.webrtc_client import LiveClient


@dataclass
class Student:
    ws: ClientConnection
    client: LiveClient
    microphone: Microphone
    session_id: str
    user_id: int
    messages: list[dict[str, Any]] = field(default_factory=list)
    arrived: list[float] = field(default_factory=list)  # monotonic, one per message

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [m for m in self.messages if m["type"] == kind]

    def when(self, kind: str, after: float = 0.0) -> float | None:
        """When the first message of `kind` arrived after `after`."""
        return next(
            (
                t
                for t, m in zip(self.arrived, self.messages, strict=True)
                if m["type"] == kind and t >= after
            ),
            None,
        )

    def say(self, text: str) -> float:
        """Speaks `text` (our voice, the same every time); returns when its last sample is
        sent."""
        return self.microphone.say(*piper_speech(text, varied=False))

    async def ask_by_text(self, content: str) -> None:
        await send(
            self.ws,
            type="text_webrtc",
            content=content,
            user_id=self.user_id,
            engine_session_id=self.session_id,
        )


@asynccontextmanager
async def hands_free(
    engine: EngineProcess, student: int, echo_db: float | None = None, listen: bool = True
) -> AsyncIterator[Student]:
    """`echo_db`: the avatar's voice comes back into the microphone this much quieter.
    `listen`: send `listen` for the session (else the microphone follows `text_webrtc`)."""
    session = engine.create_session(student_id=student)
    async with connect(
        engine.ws_url(f"user_{student}", session["engine_token"]), max_size=None
    ) as ws:
        microphone = Microphone(seed=student)
        microphone.echo_db = echo_db
        client = LiveClient(microphone=microphone)
        await client.connect(ws, student)
        me = Student(ws, client, microphone, session["session_id"], student)

        async def read() -> None:
            while True:
                message = await receive(ws, timeout_s=3600)
                me.arrived.append(time.monotonic())
                me.messages.append(message)

        reader = asyncio.create_task(read())
        try:
            if listen:
                await send(ws, type="listen", engine_session_id=me.session_id)
                await until(lambda: me.of("listening"), 10, "listening")
            yield me
        finally:
            reader.cancel()
            await client.close()
