"""A WebSocket client speaking the engine's protocol, for tests and benchmarks."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import time
import wave
from typing import Any

from websockets.asyncio.client import ClientConnection


async def send(ws: ClientConnection, **message: Any) -> None:
    await ws.send(json.dumps(message))


async def receive(ws: ClientConnection, timeout_s: float = 90) -> dict[str, Any]:
    raw = await asyncio.wait_for(ws.recv(), timeout_s)
    message: dict[str, Any] = json.loads(raw)
    return message


async def ask(ws: ClientConnection, timeout_s: float = 90, **message: Any) -> dict[str, Any]:
    await send(ws, **message)
    return await receive(ws, timeout_s)


def wav_info(b64_wav: str) -> tuple[int, float]:
    """(sample rate, seconds) of a base64 WAV."""
    with wave.open(io.BytesIO(base64.b64decode(b64_wav))) as wav:
        return wav.getframerate(), wav.getnframes() / wav.getframerate()


async def until(condition, timeout_s: float, what: str) -> None:  # type: ignore[no-untyped-def]
    """Waits for `condition()` to hold; AssertionError naming `what` after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not {what} after {timeout_s} s")
        await asyncio.sleep(0.02)
