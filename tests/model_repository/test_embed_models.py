"""The embedding models over gRPC, and retrieval quality on the held-out questions."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from benchmarks.harness.triton_stats import counts_after, settled_counts, together
from benchmarks.knowledge_eval import evaluate
from orchestrator.knowledge.embedder import Embedder
from orchestrator.knowledge.store import KnowledgeStore
from orchestrator.settings import Settings
from orchestrator.triton_client import TritonClient, TritonError

pytestmark = pytest.mark.serving


@pytest.mark.parametrize(
    ("model", "near", "far"),
    [
        (
            "embed",
            ("How do plants make food?", "Plants use sunlight to make sugar."),
            "The heart pumps blood.",
        ),
        ("embed_zh", ("植物怎样制造养分？", "植物利用阳光制造葡萄糖。"), "心脏把血液送到全身。"),
    ],
)
async def test_similar_meanings_are_near(
    client: TritonClient, model: str, near: tuple[str, str], far: str
) -> None:
    embedder = Embedder(client)
    query = (await embedder.embed([near[0]], "query", model))[0]
    passages = await embedder.embed([near[1], far], "passage", model)
    assert query.shape == (384,) and abs(float(np.linalg.norm(query)) - 1.0) < 1e-3
    assert float(passages[0] @ query) > float(passages[1] @ query) + 0.03


async def test_bad_requests_fail_alone(client: TritonClient) -> None:
    embedder = Embedder(client)
    long = "植物利用阳光、水和二氧化碳制造葡萄糖，并释放氧气。" * 40  # the longest text it reads
    results, ran = await together(
        client,
        "embed_zh",
        lambda: embedder.embed([long], "passage", "embed_zh"),
        lambda: [
            embedder.embed(["fine"], "passage", "embed_zh"),
            embedder.embed([""], "passage", "embed_zh"),
            embedder.embed(["fine"], "sideways", "embed_zh"),  # type: ignore[arg-type]
        ],
    )
    assert isinstance(results[0], np.ndarray)
    assert isinstance(results[1], TritonError) and "empty" in str(results[1])
    assert isinstance(results[2], TritonError) and "query or passage" in str(results[2])
    assert ran == Counter({1: 1, 3: 1})  # the busy one alone, then the three in one execution


async def test_texts_share_batches(client: TritonClient) -> None:
    before = await settled_counts(client, "embed")
    await Embedder(client).embed([f"Sentence number {n}." for n in range(24)], "passage", "embed")
    requests, executions = await counts_after(client, "embed", before, 24)
    assert requests == 24 and executions < 24


async def test_retrieval_finds_the_right_notes(client: TritonClient, tmp_path: Path) -> None:
    """Measured (README): top-1 100 % for both sample knowledge bases. Bounds leave room for
    two misses; the out-of-KB questions here are new ones, not those the thresholds came from."""
    settings = Settings()
    store = KnowledgeStore(tmp_path, Embedder(client))
    await store.load(settings.knowledge_seed_dir)
    thresholds = {
        "embed": settings.knowledge_min_score_en,
        "embed_zh": settings.knowledge_min_score_zh,
    }
    report = await evaluate(store, thresholds)
    for row in report.values():
        assert row["top1_hit_rate"] >= 0.9 and row["top3_hit_rate"] >= 0.95, report
        assert row["answered"] >= 0.9, report
    fresh = {"science": ["How many legs does a spider have?", "When did the Roman Empire fall?"],
             "science_zh": ["长城有多长？", "怎么学好英语？"]}  # fmt: skip
    for kb_id, questions in fresh.items():
        base = store.get(kb_id)
        assert base is not None
        for question in questions:
            best = (await store.search(kb_id, question, 1))[0].score
            assert best < thresholds[base.model], (question, best)
