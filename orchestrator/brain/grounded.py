"""GroundedTutor: the embedded tutor. It answers only from its knowledge base.

It greets, answers with the sentences of the retrieved passage that best match the question
(extractive: it states nothing its notes do not say), offers to go on, continues when asked,
and says plainly when its notes do not cover a question — in the tutor's language.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from orchestrator.brain.base import AIEngine, ChatTurn, Passage, ReplyRequest
from orchestrator.knowledge.chunks import sentences_of
from orchestrator.knowledge.store import KnowledgeStore


@dataclass(frozen=True)
class Phrases:
    greeting: re.Pattern[str]
    thanks: re.Pattern[str]
    more: re.Pattern[str]
    hello: str
    welcome: str
    openings: tuple[str, ...]
    offer: str
    unknown: str
    no_notes: str
    finished: str
    joiner: str
    listing: str


PHRASES = {
    "en": Phrases(
        greeting=re.compile(r"^\W*(hi|hello|hey|good (morning|afternoon|evening))\b", re.I),
        thanks=re.compile(r"\b(thanks|thank you|cheers)\b", re.I),
        more=re.compile(
            r"^\W*(yes|yeah|yep|sure|ok(ay)?|please|go on|continue|tell me more|more)\b", re.I
        ),
        hello=(
            "Hello! I'm {name}. What would you like to learn about today? I can help with {topics}."
        ),
        welcome="You're welcome! What else would you like to explore?",
        openings=("Good question.", "Let's look at that.", "Here is what my notes say."),
        offer="Shall I tell you more about {topic}?",
        unknown=(
            "I'm not sure about that. It isn't in my notes, and I don't want to guess. "
            "I can help with {topics}. Which would you like?"
        ),
        no_notes="I don't have any notes to teach from yet, so I can't answer that reliably.",
        finished="That's everything my notes say about {topic}. Shall we look at {topics}?",
        joiner=" ",
        listing=", ",
    ),
    "zh": Phrases(
        greeting=re.compile(r"^\W*(你好|您好|嗨|早上好|下午好|晚上好)"),
        thanks=re.compile(r"(谢谢|多谢|感谢)"),
        more=re.compile(r"^\W*(是的|好的|好啊|好|可以|继续|再讲|多讲|还有呢|请继续)"),
        hello="你好！我是{name}。今天你想学什么？我可以讲{topics}。",
        welcome="不客气！你还想了解什么？",
        openings=("这个问题问得好。", "我们来看一看。", "我的笔记上是这样说的。"),
        offer="要我再多讲一点{topic}吗？",
        unknown="这个我不太确定。我的笔记里没有讲到，我不想乱猜。我可以讲{topics}，你想听哪个？",
        no_notes="我现在还没有可以用来教学的笔记，所以没法可靠地回答这个问题。",
        finished="关于{topic}，我的笔记就讲到这里。我们要不要看看{topics}？",
        joiner="",
        listing="、",
    ),
}
SENTENCES_PER_ANSWER = 2


class GroundedTutor(AIEngine):
    name = "grounded"

    def __init__(self, knowledge: KnowledgeStore, min_score: dict[str, float]) -> None:
        self.knowledge = knowledge
        self.min_score = min_score  # per embedding model: below it, a passage is not an answer

    async def _stream(self, request: ReplyRequest) -> AsyncIterator[str]:
        for piece in re.findall(r"\S+\s*|\S", await self._reply(request)):
            yield piece
            await asyncio.sleep(0)

    async def _reply(self, request: ReplyRequest) -> str:
        language = request.tutor.language or "en"
        words = PHRASES.get(language, PHRASES["en"])
        text = request.student_text.strip()
        base = self.knowledge.get(request.kb_id) if request.kb_id else None
        topics = self._topics(request.kb_id, words)
        if words.greeting.search(text) and len(text) < 40:
            return words.hello.format(name=request.tutor.name, topics=topics)
        if words.thanks.search(text) and len(text) < 40:
            return words.welcome
        if base is None or not base.chunks:
            return words.no_notes
        if (
            words.more.search(text)
            and len(text) < 40
            and (previous := _last_question(request.history))
        ):
            return await self._more(request, previous, words, topics)
        usable = [p for p in request.passages if p.score >= self.min_score.get(base.model, 0.0)]
        if not usable:
            return words.unknown.format(topics=topics)
        best = usable[0]
        said = await self._best_sentences(request.kb_id or "", text, best, set())
        opening = words.openings[len(request.history) // 2 % len(words.openings)]
        topic = _topic(best)
        return words.joiner.join([opening, *said, words.offer.format(topic=topic)])

    async def _more(self, request: ReplyRequest, question: str, words: Phrases, topics: str) -> str:
        kb_id = request.kb_id or ""
        hits = await self.knowledge.search(kb_id, question, k=3)
        base = self.knowledge.get(kb_id)
        threshold = self.min_score.get(base.model, 0.0) if base else 0.0
        hits = [h for h in hits if h.score >= threshold]
        already = _assistant_text(request.history)
        for hit in hits:
            passage = Passage(hit.chunk.title, hit.chunk.text, hit.score, hit.chunk.document)
            fresh = await self._best_sentences(kb_id, question, passage, already)
            if fresh:
                return words.joiner.join([*fresh, words.offer.format(topic=_topic(passage))])
        topic = _topic(Passage(hits[0].chunk.title, "", 0, "")) if hits else ""
        return words.finished.format(topic=topic, topics=topics)

    async def _best_sentences(
        self, kb_id: str, question: str, passage: Passage, skip: set[str]
    ) -> list[str]:
        """The passage's sentences that answer the question best, in the passage's order."""
        candidates = [s for s in sentences_of(passage.text) if s not in skip]
        if len(candidates) <= SENTENCES_PER_ANSWER:
            return candidates
        scores = await self.knowledge.score(kb_id, question, candidates)
        chosen = sorted(
            sorted(range(len(candidates)), key=lambda i: -scores[i])[:SENTENCES_PER_ANSWER]
        )
        return [candidates[i] for i in chosen]

    def _topics(self, kb_id: str | None, words: Phrases) -> str:
        base = self.knowledge.get(kb_id) if kb_id else None
        if base is None:
            return ""
        titles: list[str] = []
        for chunk in base.chunks.values():
            title = chunk.title.split(" › ")[0]
            if title and title not in titles:
                titles.append(title)
        return words.listing.join(t.lower() if words is PHRASES["en"] else t for t in titles[:4])


def _topic(passage: Passage) -> str:
    """What the passage is about: its document's title ("photosynthesis")."""
    title = passage.title.split(" › ")[0]
    return title.lower() if title.isascii() else title


def _last_question(history: Sequence[ChatTurn]) -> str | None:
    """The student's last real question (not a "yes" or "more")."""
    for turn in reversed(history):
        if turn.role == "user" and not any(p.more.search(turn.content) for p in PHRASES.values()):
            return turn.content
    return None


def _assistant_text(history: Sequence[ChatTurn]) -> set[str]:
    return {s for turn in history if turn.role == "assistant" for s in sentences_of(turn.content)}
