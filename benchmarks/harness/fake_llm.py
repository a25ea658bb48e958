"""A loopback stand-in for an OpenAI-compatible LLM server, speaking the real SSE stream format.

The requested `model` picks the behaviour: "scripted" streams `reply` word by word,
"slow" waits `delay_s` before its first token, "fail-500" / "fail-400" answer HTTP errors.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from benchmarks.harness.processes import free_port


@dataclass
class FakeLLM:
    reply: str = "Plants make sugar from light. They use water and carbon dioxide."
    delay_s: float = 5.0
    word_delay_s: float = 0.005  # between streamed words: 0.04 is a typical served 8B model
    requests: list[dict[str, Any]] = field(default_factory=list)
    port: int = field(default_factory=free_port)
    _server: uvicorn.Server | None = None
    _thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def _chunk(self, model: str, delta: dict[str, Any], finish: str | None = None) -> str:
        body = {
            "id": "chatcmpl-fake",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }
        return f"data: {json.dumps(body)}\n\n"

    async def _stream(self, model: str) -> AsyncIterator[str]:
        if model == "slow":
            await asyncio.sleep(self.delay_s)
        yield self._chunk(model, {"role": "assistant", "content": ""})
        for word in self.reply.split(" "):
            yield self._chunk(model, {"content": word + " "})
            await asyncio.sleep(self.word_delay_s)
        yield self._chunk(model, {}, finish="stop")
        yield "data: [DONE]\n\n"

    async def _completions(self, request: Request) -> Response:
        body = await request.json()
        self.requests.append({"body": body, "headers": dict(request.headers)})
        model = body.get("model", "")
        if model.startswith("fail-"):
            code = int(model.removeprefix("fail-"))
            error = {"error": {"message": f"scripted failure {code}", "type": "server_error"}}
            return JSONResponse(error, status_code=code)
        if not body.get("stream"):
            return JSONResponse({"error": {"message": "this fake only streams"}}, status_code=400)
        return StreamingResponse(self._stream(model), media_type="text/event-stream")

    def start(self) -> FakeLLM:
        app = Starlette(routes=[Route("/v1/chat/completions", self._completions, methods=["POST"])])
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("fake LLM did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(10)
