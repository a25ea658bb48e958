"""Knowledge bases over REST, and the embedded (grounded) tutor answering from them."""

from __future__ import annotations

import io
import time
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect

from benchmarks.harness.client import ask
from benchmarks.harness.processes import EngineProcess, TritonProcess

pytestmark = pytest.mark.serving

SEEDS = Path(__file__).resolve().parents[2] / "config" / "knowledge"


def kbs(engine: EngineProcess) -> dict[str, int]:
    health: dict[str, int] = engine.health().json()["knowledge_bases"]
    return health


async def reply_to(engine: EngineProcess, tutor: int, student: int, *texts: str) -> list[str]:
    session = engine.create_session(tutor_id=tutor, student_id=student)
    answers = []
    async with connect(engine.ws_url(session["session_id"], session["engine_token"])) as ws:
        for text in texts:
            reply = await ask(ws, type="text", content=text)
            assert reply["type"] == "text", reply
            answers.append(reply["content"])
    return answers


def test_the_sample_knowledge_bases_are_loaded(engine: EngineProcess) -> None:
    _wait_loaded(engine)
    listed = {kb["kb_id"]: kb for kb in httpx.get(f"{engine.base_url}/v1/knowledge-bases").json()}
    assert listed["science"]["language"] == "en" and listed["science"]["documents"] == 10
    assert listed["science_zh"]["language"] == "zh" and listed["science_zh"]["documents"] == 6
    docs = httpx.get(f"{engine.base_url}/v1/knowledge-bases/science/documents").json()
    assert {"photosynthesis", "magnets", "heart"} <= {d["doc_id"] for d in docs}


async def test_an_in_kb_question_is_answered_from_the_right_passage(engine: EngineProcess) -> None:
    answer, more, again = await reply_to(
        engine, 1, 1200, "Why do compass needles point north?", "Yes please", "Tell me more"
    )
    notes = (SEEDS / "science" / "magnets.md").read_text()
    assert "compass" in answer.lower() and "points north" in answer
    spoken = [s.strip() + "." for s in answer.split(".") if s.strip()]
    assert any(s in notes for s in spoken)  # its facts are the notes' own sentences
    assert "Shall I tell you more" in answer
    assert (
        more and more != answer and any(s.strip() in notes for s in more.split(".") if len(s) > 12)
    )
    assert again != more


async def test_an_out_of_kb_question_gets_an_honest_i_dont_know(engine: EngineProcess) -> None:
    (answer,) = await reply_to(engine, 1, 1201, "Who painted the Mona Lisa?")
    assert "isn't in my notes" in answer and "don't want to guess" in answer
    assert "magnets" in answer  # and it offers what it can teach


async def test_greetings_and_thanks(engine: EngineProcess) -> None:
    hello, thanks = await reply_to(engine, 13, 1202, "Hi there!", "Thanks a lot")
    assert hello.startswith("Hello! I'm Mr. Okafor.") and "magnets" in hello
    assert thanks.startswith("You're welcome")


async def test_the_mandarin_tutor_answers_from_its_notes(engine: EngineProcess) -> None:
    known, unknown = await reply_to(engine, 2, 1203, "木星有多大？", "红烧肉怎么做？")
    assert "木星" in known and "地球" in known
    assert "笔记里没有" in unknown


def test_documents_can_be_added_searched_and_deleted(engine: EngineProcess) -> None:
    url = f"{engine.base_url}/v1/knowledge-bases/geology/documents"
    created = httpx.post(
        url,
        json={
            "name": "rocks.md",
            "language": "en",
            "text": "# Rocks\nGranite is an igneous rock formed from cooled magma.",
        },
        timeout=60,
    )
    assert created.status_code == 201 and created.json()["doc_id"] == "rocks"
    upload = httpx.post(
        url,
        files={
            "file": (
                "minerals.txt",
                b"Quartz is a hard mineral made of silicon and oxygen.",
                "text/plain",
            )
        },
        timeout=60,
    )
    assert upload.status_code == 201 and upload.json()["chunks"] == 1
    hits = httpx.get(
        f"{engine.base_url}/v1/knowledge-bases/geology/search",
        params={"q": "what is quartz made of"},
    ).json()
    assert hits[0]["doc_id"] == "minerals" and hits[0]["score"] > 0.3
    assert httpx.delete(f"{url}/minerals").status_code == 204
    assert httpx.delete(f"{url}/minerals").status_code == 404
    assert [d["doc_id"] for d in httpx.get(url).json()] == ["rocks"]


def test_a_pdf_upload_is_read(engine: EngineProcess) -> None:
    pdf = _tiny_pdf("Tides are caused by the pull of the Moon.")
    response = httpx.post(
        f"{engine.base_url}/v1/knowledge-bases/oceans/documents",
        files={"file": ("tides.pdf", pdf, "application/pdf")},
        data={"language": "en"},
        timeout=60,
    )
    assert response.status_code == 201, response.text
    hits = httpx.get(
        f"{engine.base_url}/v1/knowledge-bases/oceans/search", params={"q": "why are there tides"}
    ).json()
    assert "Moon" in hits[0]["text"]


@pytest.mark.parametrize(
    ("kb", "request_kwargs", "status", "words"),
    [
        ("bad id!", {"json": {"name": "a.md", "text": "x"}}, 422, "kb_id"),
        ("kb", {"json": {"name": "a.md", "text": ""}}, 422, "text"),
        ("kb", {"json": {"text": "no name"}}, 422, "name"),
        ("kb", {"files": {"file": ("a.docx", b"PK..", "application/octet-stream")}}, 415, ".docx"),
        ("kb", {"content": b"plain", "headers": {"content-type": "text/plain"}}, 415, "json"),
        ("kb", {"files": {"file": ("a.pdf", b"not a pdf", "application/pdf")}}, 422, "PDF"),
        (
            "science",
            {"json": {"name": "zh.md", "text": "植物", "language": "zh"}},
            422,
            "is en, not zh",
        ),
    ],
)
def test_bad_documents_are_refused_with_a_reason(
    engine: EngineProcess, kb: str, request_kwargs: dict[str, object], status: int, words: str
) -> None:
    response = httpx.post(
        f"{engine.base_url}/v1/knowledge-bases/{kb}/documents", timeout=60, **request_kwargs
    )  # type: ignore[arg-type]
    assert response.status_code == status, response.text
    assert words in response.text


def test_unknown_knowledge_bases_are_404(engine: EngineProcess) -> None:
    assert httpx.get(f"{engine.base_url}/v1/knowledge-bases/nope/documents").status_code == 404
    assert (
        httpx.get(
            f"{engine.base_url}/v1/knowledge-bases/nope/search", params={"q": "x"}
        ).status_code
        == 404
    )


def test_a_restart_embeds_nothing_again(triton: TritonProcess, tmp_path: Path) -> None:
    env = {"ENGINE_TRITON_URL": triton.grpc_url, "ENGINE_MAX_DOCUMENT_CHARS": "2000"}
    first = EngineProcess(tmp_path, env=env).start()
    _wait_loaded(first)
    too_big = httpx.post(
        f"{first.base_url}/v1/knowledge-bases/x/documents",
        json={"name": "b.md", "text": "a" * 2001},
    )
    assert too_big.status_code == 413
    first.stop()
    before = _added(first.log)
    second = EngineProcess(tmp_path, env=env).start()
    try:
        _wait_loaded(second)
        assert kbs(second)["science"] > 10
        assert _added(second.log) == before  # the same log file: nothing new was embedded
    finally:
        second.stop()


def _added(log: Path) -> int:
    return sum(1 for line in log.read_text().splitlines() if '"msg": "document added"' in line)


def _wait_loaded(engine: EngineProcess) -> None:
    deadline = time.monotonic() + 120
    while not engine.health().json()["knowledge_ready"]:
        assert time.monotonic() < deadline, "knowledge bases did not load"
        time.sleep(0.2)


def _tiny_pdf(text: str) -> bytes:
    """A one-page PDF with `text` in Helvetica, written by hand (the format is plain text)."""
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for offset in offsets:
        out.write(b"%010d 00000 n \n" % offset)
    out.write(
        b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    )
    return out.getvalue()
