"""An engine that streams replies from an OpenAI-compatible `/v1/chat/completions` endpoint."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any, cast

import openai
from openai import AsyncOpenAI, AsyncStream
from openai.types.chat import ChatCompletionChunk

from orchestrator.brain.base import AIEngine, AIEngineError, Passage, ReplyRequest
from orchestrator.tutors import LLMEndpoint, TutorProfile

_LANGUAGE_NAMES = {"en": "English", "zh": "Mandarin Chinese (Simplified characters)"}


def system_prompt(tutor: TutorProfile, passages: Sequence[Passage] = ()) -> str:
    language = _LANGUAGE_NAMES.get(tutor.language or "", "the student's language")
    prompt = (
        f"You are {tutor.name}, a tutor. {tutor.persona}\n"
        f"Always answer in {language}. Your words are spoken aloud: use short sentences, "
        "no markdown, no lists, no emoji. Keep each answer under 120 words."
    )
    if passages:
        notes = "\n".join(f"- [{p.title}] {p.text}" for p in passages)
        prompt += (
            "\nTeach from these notes. If they do not cover the question, say so rather than "
            f"guess.\nNotes:\n{notes}"
        )
    return prompt


class OpenAIChatEngine(AIEngine):
    name = "openai-chat"

    def __init__(self, endpoint: LLMEndpoint, api_key: str | None) -> None:
        self.endpoint = endpoint
        self._client = AsyncOpenAI(
            base_url=str(endpoint.base_url),
            api_key=api_key or "unused",  # local servers (vLLM, Ollama) accept any key
            timeout=endpoint.total_timeout_s,
            max_retries=0,  # the student is waiting: fail fast, the client may retry
        )

    def messages(self, request: ReplyRequest) -> list[dict[str, Any]]:
        history = [{"role": turn.role, "content": turn.content} for turn in request.history]
        return [
            {"role": "system", "content": system_prompt(request.tutor, request.passages)},
            *history,
            {"role": "user", "content": request.student_text},
        ]

    async def _stream(self, request: ReplyRequest) -> AsyncIterator[str]:
        endpoint = self.endpoint
        try:
            async with asyncio.timeout(endpoint.total_timeout_s):
                stream = await asyncio.wait_for(
                    self._client.chat.completions.create(
                        model=endpoint.model,
                        messages=self.messages(request),  # type: ignore[arg-type]
                        stream=True,
                        temperature=endpoint.temperature,
                        max_tokens=endpoint.max_tokens,
                    ),
                    endpoint.first_token_timeout_s,
                )
                chunks = aiter(cast(AsyncStream[ChatCompletionChunk], stream))
                first = await asyncio.wait_for(anext(chunks, None), endpoint.first_token_timeout_s)
                if first is not None:
                    yield _delta(first)
                    async for chunk in chunks:
                        yield _delta(chunk)
        except TimeoutError as error:
            raise AIEngineError(
                f"the LLM endpoint {endpoint.base_url} did not answer in time", retryable=True
            ) from error
        except openai.APIStatusError as error:
            raise AIEngineError(
                f"the LLM endpoint answered HTTP {error.status_code}: {error.message}",
                retryable=error.status_code >= 500 or error.status_code == 429,
            ) from error
        except openai.APIConnectionError as error:
            raise AIEngineError(
                f"cannot reach the LLM endpoint {endpoint.base_url}: {error}", retryable=True
            ) from error
        except openai.OpenAIError as error:
            raise AIEngineError(f"the LLM endpoint failed: {error}", retryable=True) from error

    async def aclose(self) -> None:
        await self._client.close()


def _delta(chunk: Any) -> str:
    if not chunk.choices:
        return ""
    return chunk.choices[0].delta.content or ""
