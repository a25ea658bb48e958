"""Retrieval quality on the held-out questions (benchmarks/knowledge_questions.toml), and how
well the embedded tutor tells what its notes cover from what they do not.

    .venv/bin/python -m benchmarks.knowledge_eval [--triton-url host:port]

Reports per knowledge base: top-1 and top-3 hit rate (the expected document among the first
k passages), the best score of answerable and of unanswerable questions, and with the engine's
thresholds, how many answerable questions get an answer and unanswerable ones an "I don't
know". Results: benchmarks/results/knowledge_eval.{json,md}.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import tomllib
from pathlib import Path
from typing import Any

from benchmarks.common import RESULTS, ROOT, triton_server
from orchestrator.knowledge.embedder import Embedder
from orchestrator.knowledge.store import KnowledgeStore
from orchestrator.settings import Settings
from orchestrator.triton_client import TritonClient
from triton_ops.contracts import EMBED, EMBED_ZH

QUESTIONS = ROOT / "benchmarks" / "knowledge_questions.toml"


def load_questions() -> dict[str, Any]:
    return tomllib.loads(QUESTIONS.read_text(encoding="utf-8"))


async def evaluate(
    store: KnowledgeStore, thresholds: dict[str, float]
) -> dict[str, dict[str, Any]]:
    data = load_questions()
    report: dict[str, dict[str, Any]] = {}
    for kb_id in sorted({q["kb"] for q in data["question"]}):
        base = store.get(kb_id)
        assert base is not None, kb_id
        threshold = thresholds[base.model]
        asked = [q for q in data["question"] if q["kb"] == kb_id]
        hits = [await store.search(kb_id, q["text"], 3) for q in asked]
        top1 = sum(
            bool(h) and h[0].chunk.document == q["expect"] for q, h in zip(asked, hits, strict=True)
        )
        top3 = sum(
            any(x.chunk.document == q["expect"] for x in h)
            for q, h in zip(asked, hits, strict=True)
        )
        answerable = [h[0].score for h in hits if h]
        outside = [q for q in data.get("unanswerable", []) if q["kb"] == kb_id]
        unknown = [(await store.search(kb_id, q["text"], 1))[0].score for q in outside]
        report[kb_id] = {
            "questions": len(asked),
            "top1_hit_rate": round(top1 / len(asked), 3),
            "top3_hit_rate": round(top3 / len(asked), 3),
            "answerable_best_score_median": round(statistics.median(answerable), 3),
            "answerable_best_score_min": round(min(answerable), 3),
            "unanswerable_best_score_max": round(max(unknown), 3) if unknown else None,
            "threshold": threshold,
            "answered": round(sum(s >= threshold for s in answerable) / len(answerable), 3),
            "declined_unanswerable": round(sum(s < threshold for s in unknown) / len(unknown), 3)
            if unknown
            else None,
            "unanswerable": len(unknown),
        }
    return report


def markdown(report: dict[str, dict[str, Any]]) -> str:
    lines = [
        "| knowledge base | questions | top-1 | top-3 | answered (≥ threshold) "
        "| out-of-KB declined |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for kb_id, r in report.items():
        lines.append(
            f"| {kb_id} | {r['questions']} | {r['top1_hit_rate']:.0%} | {r['top3_hit_rate']:.0%} "
            f"| {r['answered']:.0%} | {r['declined_unanswerable']:.0%} of {r['unanswerable']} |"
        )
    return "\n".join(lines) + "\n"


async def main(args: argparse.Namespace) -> None:
    settings = Settings()
    thresholds = {
        EMBED.name: settings.knowledge_min_score_en,
        EMBED_ZH.name: settings.knowledge_min_score_zh,
    }
    async with triton_server(args.triton_url) as url:
        client = TritonClient(url, request_timeout_s=300)
        with tempfile.TemporaryDirectory(prefix="bench-kb-") as tmp:
            store = KnowledgeStore(Path(tmp), Embedder(client))
            await store.load(settings.knowledge_seed_dir)
            report = await evaluate(store, thresholds)
        await client.close()
    print(json.dumps(report, indent=2, ensure_ascii=False))
    print(markdown(report))
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "knowledge_eval.json").write_text(json.dumps(report, indent=2, ensure_ascii=False))
    (RESULTS / "knowledge_eval.md").write_text(markdown(report))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--triton-url")
    asyncio.run(main(parser.parse_args()))
