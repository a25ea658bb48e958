"""ReflectiveTutor: the stand-in engine used when a tutor has no LLM endpoint.

It knows no facts and states none: it reflects the student's question back and guides them
to reason it out. The grounded knowledge-base tutor replaces it as the embedded default.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator

from orchestrator.brain.base import AIEngine, ReplyRequest

_TEMPLATES = {
    "en": (
        "Let's work on that together. You asked: {topic}. "
        "What do you already know about it? "
        "Tell me which part feels unclear, and we will take it one step at a time."
    ),
    "zh": (
        "我们一起来想一想。你问的是：{topic}。"
        "关于这个，你已经知道些什么？告诉我哪一部分不清楚，我们一步一步来。"
    ),
}


def _topic(text: str, limit: int = 120) -> str:
    topic = re.sub(r"\s+", " ", text).strip().rstrip("?？.。!！")
    return topic if len(topic) <= limit else topic[:limit].rsplit(" ", 1)[0] + "…"


class ReflectiveTutor(AIEngine):
    name = "reflective"

    async def _stream(self, request: ReplyRequest) -> AsyncIterator[str]:
        template = _TEMPLATES.get(request.tutor.language or "en", _TEMPLATES["en"])
        reply = template.format(topic=_topic(request.student_text))
        for piece in re.findall(r"\S+\s*", reply):
            yield piece
            await asyncio.sleep(0)
