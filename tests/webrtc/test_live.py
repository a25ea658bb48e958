"""WebRTC end to end with a real aiortc peer: signaling, idle stream, live replies, A/V sync,
barge-in, several users at once, and every signaling error."""

from __future__ import annotations

import asyncio
import base64
import math
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import numpy as np
import pytest
from websockets.asyncio.client import ClientConnection, connect

from benchmarks.harness import portraits
from benchmarks.harness.client import ask, receive, send, until
from benchmarks.harness.processes import EngineProcess
from benchmarks.harness.speech import encode, piper_speech
from benchmarks.harness.webrtc_client import LiveClient, mouth_inside
from media.avatar.photo.avatar import PhotoAvatar
from media.avatar.registry import load_avatar
from tests.support.lips import assert_lips_in_sync, speaking
from tests.support.metrics import grew, scrape
from tests.webrtc.conftest import AVATARS

pytestmark = pytest.mark.serving


@asynccontextmanager
async def live(
    engine: EngineProcess,
    student: int,
    avatar: str = "avatar_tutor_13",
    mouth_box: tuple[slice, slice] | None = None,
) -> AsyncIterator[tuple[ClientConnection, LiveClient, str]]:
    session = engine.create_session(student_id=student)
    async with connect(
        engine.ws_url(f"user_{student}", session["engine_token"]), max_size=None
    ) as ws:
        client = LiveClient()
        if mouth_box is not None:
            client.mouth_box, client.mouth_measure = mouth_box, mouth_inside
        await client.connect(ws, student, avatar_id=avatar)
        try:
            yield ws, client, session["session_id"]
        finally:
            await client.close()


async def test_an_offer_gets_an_answer_and_the_avatar_idles(engine: EngineProcess) -> None:
    started = time.monotonic()
    async with live(engine, 700) as (_, client, _):
        await until(lambda: len(client.video) > 60, 10, "streaming video")
        first = client.video[0].arrived - started
        window = client.video[-50:]
        fps = (len(window) - 1) / (window[-1].arrived - window[0].arrived)
        assert first < 2.0 and 20 <= fps <= 30, (first, fps)
        assert all(r.value < 0.01 for r in client.audio[5:])  # nobody speaks yet
        assert len({r.value for r in client.video}) > 1 or len({r.corner for r in client.video}) > 1


async def test_a_live_reply_is_spoken_with_lips_in_sync(engine: EngineProcess) -> None:
    async with live(engine, 701) as (ws, client, session_id):
        await until(lambda: len(client.video) > 10, 10, "streaming video")
        before = scrape(f"{engine.base_url}/metrics")
        sent = time.monotonic()
        reply = await ask(
            ws,
            type="text_webrtc",
            content="What is a magnet?",
            user_id=701,
            engine_session_id=session_id,
        )
        assert (
            reply["type"] == "text"
            and reply["delivery"] == "webrtc"
            and "magnet" in reply["content"].lower()
        )
        assert "audio" not in reply  # the speech went out on the audio track
        await until(lambda: speaking(client, sent), 10, "speaking")
        first_audio = speaking(client, sent)[0].arrived - sent
        await until(
            lambda: client.audio[-1].arrived - speaking(client, sent)[-1].arrived > 1.0, 30, "done"
        )
        assert first_audio < 3.0, first_audio
        # the video streamed on through every sentence of the reply, and after it
        during = [r for r in client.video if r.arrived >= sent]
        rate = (len(during) - 1) / (during[-1].arrived - during[0].arrived)
        assert time.monotonic() - during[-1].arrived < 0.5 and rate > 20, rate
        after = scrape(f"{engine.base_url}/metrics")
        assert grew(before, after, "tutor_engine_first_audio_seconds_count") == 1
        assert grew(before, after, "tutor_engine_replies_total", kind="webrtc") == 1
        assert grew(before, after, "tutor_engine_live_render_seconds_count") > 25

        assert_lips_in_sync(client, sent)


async def test_a_photo_avatar_talks_live_with_lips_in_sync(engine: EngineProcess) -> None:
    picture = portraits.encoded(portraits.astronaut())
    made = httpx.post(
        f"{engine.base_url}/v1/avatars", files={"image": ("a.png", picture)}, timeout=60
    )
    assert made.status_code == 201, made.text
    avatar = PhotoAvatar.load(engine.workdir / "data" / "avatars" / made.json()["avatar_id"])
    x, y, w, h = avatar.mouth_box
    async with live(engine, 708, avatar.avatar_id, (slice(y, y + h), slice(x, x + w))) as (
        ws,
        client,
        session_id,
    ):
        await until(lambda: len(client.video) > 10, 10, "streaming video")
        sent = time.monotonic()
        reply = await ask(
            ws,
            type="text_webrtc",
            content="What is a magnet?",
            user_id=708,
            engine_session_id=session_id,
        )
        assert reply["type"] == "text" and reply["delivery"] == "webrtc"
        await until(lambda: speaking(client, sent), 10, "speaking")
        await until(
            lambda: client.audio[-1].arrived - speaking(client, sent)[-1].arrived > 1.0, 30, "done"
        )
        during = [r for r in client.video if r.arrived >= sent]
        rate = (len(during) - 1) / (during[-1].arrived - during[0].arrived)
        assert rate > 20, rate
        assert_lips_in_sync(client, sent)


async def test_barge_in_stops_the_tutor_within_200_ms(engine: EngineProcess) -> None:
    async with live(engine, 702) as (ws, client, session_id):
        await until(lambda: len(client.video) > 10, 10, "streaming video")
        sent = time.monotonic()
        await send(
            ws,
            type="text_webrtc",
            content="Tell me a long story about the sea.",
            user_id=702,
            engine_session_id=session_id,
        )
        await until(lambda: len(speaking(client, sent)) > 10, 10, "speaking")
        stop = time.monotonic()
        await send(ws, type="interrupt", engine_session_id=session_id)
        story = await receive(ws)  # cut off while it was written, or already all written
        assert (story["type"], story.get("reason", "interrupt")) in {
            ("interrupted", "interrupt"),
            ("text", "interrupt"),
        }, story
        await asyncio.sleep(1.5)
        last_sound = speaking(client, sent)[-1].arrived
        assert last_sound - stop < 0.2, last_sound - stop
        # the mouth went back to rest: nowhere near as open as it was while speaking. Not
        # compared with the resting picture itself: the encoder may restart at a lower bit
        # rate meanwhile, and its fresh keyframe blurs the lips for a while
        rest = float(np.median([r.value for r in client.video if r.arrived < sent]))
        widest = max(r.value for r in client.video if sent < r.arrived < stop)
        mouth_after = [r.value for r in client.video if r.arrived > stop + 0.3]
        assert widest > 2 * rest, (widest, rest)
        assert max(mouth_after) < rest + (widest - rest) / 3, (mouth_after, rest, widest)

        # a new utterance from the student also cuts the tutor off, then gets its answer
        sent = time.monotonic()
        await send(
            ws,
            type="text_webrtc",
            content="Tell me about the moon.",
            user_id=702,
            engine_session_id=session_id,
        )
        assert (await receive(ws))["type"] in ("text", "interrupted")
        await until(lambda: len(speaking(client, sent)) > 10, 10, "speaking again")
        speech = base64.b64encode(
            encode(piper_speech("Wait, why is the sky blue?"), "webm")
        ).decode()
        spoke = time.monotonic()
        await send(ws, type="audio", data=speech, engine_session_id=session_id)
        heard = await receive(ws)
        while heard["type"] != "transcription":
            # the moon reply's text if it was all written before the question came, and its
            # cut-off: the question barged in while it was written or while it still played
            assert heard["type"] in ("text", "interrupted"), heard
            assert heard.get("reason", "barge_in") == "barge_in", heard
            assert heard.get("delivery", "webrtc") == "webrtc", heard
            heard = await receive(ws)
        transcribed = time.monotonic()
        assert heard["type"] == "transcription" and "sky" in heard["content"].lower()
        # the moon reply fell silent at once; the answer to the question may follow quickly,
        # but only after a silence, and only once the question is transcribed
        await asyncio.sleep(max(0.0, spoke + 0.6 - time.monotonic()))
        loud = [r.arrived for r in speaking(client, spoke)]
        stopped, resumed = next(
            (a, b) for a, b in zip([spoke, *loud], [*loud, math.inf], strict=True) if b - a > 0.15
        )
        assert stopped - spoke < 0.25, stopped - spoke
        assert resumed > transcribed, (resumed, transcribed)  # the answer, not the moon again
        answer = await receive(ws)
        assert answer["type"] == "text" and answer["delivery"] == "webrtc"
        await until(lambda: speaking(client, spoke + 0.5), 10, "answering the question")


async def test_several_users_each_see_and_hear_only_their_own(engine: EngineProcess) -> None:
    avatars = {703: "avatar_tutor_1", 704: "avatar_tutor_2", 705: "avatar_tutor_13"}
    async with (
        live(engine, 703, avatars[703]) as a,
        live(engine, 704, avatars[704]) as b,
        live(engine, 705, avatars[705]) as c,
    ):
        clients = {703: a, 704: b, 705: c}
        await until(lambda: all(len(x[1].video) > 10 for x in clients.values()), 15, "streaming")
        sent = time.monotonic()
        await asyncio.gather(
            *(
                ask(
                    ws,
                    type="text_webrtc",
                    content=f"Question from {user}?",
                    user_id=user,
                    engine_session_id=sid,
                )
                for user, (ws, _, sid) in clients.items()
                if user != 705
            )
        )
        await asyncio.sleep(4)
        for user, (_, client, _) in clients.items():
            heard = len(speaking(client, sent))
            assert (heard > 20) == (user != 705), (user, heard)
            background = (
                load_avatar(AVATARS / avatars[user])
                .background[5:25, 5:25, :3]
                .reshape(-1, 3)
                .mean(axis=0)
                * 255
            )
            corners = np.array([r.corner for r in client.video[-20:]])
            assert np.abs(corners.mean(axis=0) - background).max() < 15, user


async def test_a_new_offer_replaces_the_old_peer(engine: EngineProcess) -> None:
    session = engine.create_session(student_id=706)
    async with connect(engine.ws_url("user_706", session["engine_token"]), max_size=None) as ws:
        first, second = LiveClient(), LiveClient()
        await first.connect(ws, 706)
        await until(lambda: len(first.video) > 5, 10, "first streaming")
        await second.connect(ws, 706)
        await until(lambda: len(second.video) > 5, 10, "second streaming")
        count = len(first.video)
        await asyncio.sleep(1)
        assert len(first.video) - count <= 3  # the old peer stopped sending
        await first.close()
        await second.close()


async def test_signaling_errors_are_clear(engine: EngineProcess) -> None:
    session = engine.create_session(student_id=707)
    sid = session["session_id"]
    async with connect(engine.ws_url("user_707", session["engine_token"])) as ws:
        for message, code in [
            (
                {"type": "text_webrtc", "content": "hi", "user_id": 707, "engine_session_id": sid},
                "no_webrtc",
            ),
            ({"type": "interrupt", "engine_session_id": sid}, "no_webrtc"),
            (
                {
                    "type": "webrtc_ice_candidate",
                    "candidate": {"candidate": "candidate:1 1 udp 1 127.0.0.1 9 typ host"},
                    "user_id": 707,
                },
                "invalid_webrtc",
            ),
            (
                {"type": "webrtc_offer", "sdp": "v=0 this is no sdp", "user_id": 707},
                "invalid_webrtc",
            ),
            (
                {
                    "type": "webrtc_offer",
                    "sdp": "v=0",
                    "user_id": 707,
                    "avatar_id": "avatar_nobody",
                },
                "unknown_avatar",
            ),
        ]:
            reply = await ask(ws, **message)
            assert reply["type"] == "error" and reply["code"] == code, (message, reply)
        assert (await ask(ws, type="text", content="Still fine?", engine_session_id=sid))[
            "type"
        ] == "text"
