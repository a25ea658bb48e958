"""`video` replies end to end: a lip-synced MP4 of the tutor, through the real Triton models."""

from __future__ import annotations

import asyncio
import base64
import io
import wave
from pathlib import Path

import av
import httpx
import numpy as np
import pytest
from websockets.asyncio.client import connect

from benchmarks.harness.client import ask
from benchmarks.harness.processes import EngineProcess
from media.avatar.registry import load_avatar
from tests.support.browser import chromium

pytestmark = pytest.mark.serving

AVATARS = Path(__file__).resolve().parents[2] / "avatars"
FPS = 25


def decode(mp4_b64: str) -> tuple[np.ndarray, np.ndarray, int, float]:
    """(video frames [T, H, W, 3], audio samples, audio rate, video seconds)"""
    with av.open(io.BytesIO(base64.b64decode(mp4_b64))) as container:
        video = container.streams.video[0]
        assert (
            video.codec_context.name == "h264"
            and container.streams.audio[0].codec_context.name == "aac"
        )
        seconds = float(video.duration * video.time_base)
        frames = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])
    with av.open(io.BytesIO(base64.b64decode(mp4_b64))) as container:
        chunks = [f.to_ndarray().reshape(-1) for f in container.decode(audio=0)]
        rate = container.streams.audio[0].rate
    return frames, np.concatenate(chunks), rate, seconds


def wav_seconds(b64_wav: str) -> float:
    with wave.open(io.BytesIO(base64.b64decode(b64_wav))) as wav:
        return wav.getnframes() / wav.getframerate()


def mouth_openness(frames: np.ndarray, avatar_id: str) -> np.ndarray:
    """How much mouth (lips, teeth, tongue, the dark inside) shows in each frame: pixels
    around the mouth's centre that differ from the skin at the box's edges. The box stays
    inside the face however the head moves."""
    avatar = load_avatar(AVATARS / avatar_id)
    x, y = avatar.mouth_at
    h, w = avatar.mouths.shape[1:3]
    cx, cy = x + w // 2, y + h // 2
    box = frames[:, cy - 34 : cy + 34, cx - 60 : cx + 60].astype(int)
    edges = np.concatenate(
        [box[:, :3].reshape(len(box), -1, 3), box[:, -3:].reshape(len(box), -1, 3)], axis=1
    )
    skin = np.median(edges, axis=1)[:, None, None, :]
    return (np.abs(box - skin).sum(axis=3) > 60).sum(axis=(1, 2)).astype(float)


def energy_per_frame(audio: np.ndarray, rate: int, frames: int) -> np.ndarray:
    span = rate // FPS
    padded = np.pad(audio, (0, max(0, frames * span - audio.size)))[: frames * span]
    return np.sqrt((padded.reshape(frames, span) ** 2).mean(axis=1))


async def video_reply(
    engine: EngineProcess, text: str, avatar_id: str, student: int
) -> dict[str, object]:
    session = engine.create_session(tutor_id=1, student_id=student)
    async with connect(
        engine.ws_url(session["session_id"], session["engine_token"]), max_size=None
    ) as ws:
        return await ask(ws, type="text", content=text, avatar_id=avatar_id)


async def test_a_video_reply_is_lip_synced_mp4_as_long_as_its_speech(engine: EngineProcess) -> None:
    reply = await video_reply(engine, "What makes a volcano erupt?", "avatar_tutor_1", 600)
    assert reply["type"] == "video" and reply["role"] == "assistant", reply
    assert "magma" in str(reply["content"]) and reply["engine_session_id"]
    frames, audio, rate, seconds = decode(str(reply["video"]))
    assert frames.shape[1:] == (512, 512, 3)
    speech_s = wav_seconds(str(reply["audio"]))
    assert abs(seconds - speech_s) <= 1 / FPS and abs(len(frames) / FPS - speech_s) <= 1 / FPS
    assert abs(audio.size / rate - speech_s) <= 1 / FPS

    opening = mouth_openness(frames, "avatar_tutor_1")
    loudness = energy_per_frame(audio, rate, len(frames))
    hushed = loudness < 0.05 * loudness.max()
    # silence is a pause: a frame hushed with both neighbours (between two syllables the mouth
    # rightly stays open, blending with both)
    quiet = hushed & np.r_[True, hushed[:-1]] & np.r_[hushed[1:], True]
    loud = loudness > 0.3 * loudness.max()
    assert (
        opening[loud].mean() > 1.8 * opening[quiet].mean()
    )  # moves while speaking, rests in silence
    assert np.corrcoef(opening, loudness)[0, 1] > 0.4

    # A/V sync: the mouth follows the sound with no more than one frame of lag
    def correlation(lag: int) -> float:
        a = opening[max(lag, 0) : len(opening) + min(lag, 0)]
        b = loudness[max(-lag, 0) : len(loudness) + min(-lag, 0)]
        return float(np.corrcoef(a, b)[0, 1])

    best = max(range(-4, 5), key=correlation)
    assert abs(best) <= 1, {lag: round(correlation(lag), 3) for lag in range(-4, 5)}


async def test_unknown_avatars_are_refused_with_the_valid_ids(engine: EngineProcess) -> None:
    reply = await video_reply(engine, "Hello?", "avatar_nobody", 601)
    assert reply["type"] == "error" and reply["code"] == "unknown_avatar"
    assert "avatar_tutor_13" in str(reply["content"]) and "avatar_tutor_1" in str(reply["content"])
    listed = httpx.get(f"{engine.base_url}/v1/avatars").json()
    assert {a["avatar_id"] for a in listed} >= {
        "avatar_tutor_1",
        "avatar_tutor_2",
        "avatar_tutor_13",
    }


async def test_concurrent_video_replies_do_not_mix(engine: EngineProcess) -> None:
    asks = [
        ("What makes a volcano erupt?", "avatar_tutor_13", 602, "magma"),
        ("Why does a compass point north?", "avatar_tutor_2", 603, "compass"),
    ]
    replies = await asyncio.gather(*(video_reply(engine, *a[:3]) for a in asks))
    for (_, avatar_id, _, topic), reply in zip(asks, replies, strict=True):
        assert reply["type"] == "video" and topic in str(reply["content"]).lower()
        frames = decode(str(reply["video"]))[0]
        corner = frames[0, 5:25, 5:25].reshape(-1, 3).mean(axis=0)
        background = (
            load_avatar(AVATARS / avatar_id).background[5:25, 5:25, :3].reshape(-1, 3).mean(axis=0)
            * 255
        )
        assert np.abs(corner - background).max() < 12  # each video shows the avatar it asked for


async def test_audio_with_an_avatar_gets_a_transcription_then_a_video(
    engine: EngineProcess,
) -> None:
    from benchmarks.harness.client import receive
    from benchmarks.harness.speech import encode, piper_speech

    session = engine.create_session(student_id=604)
    clip = base64.b64encode(encode(piper_speech("Can you show me?"), "webm")).decode()
    async with connect(
        engine.ws_url(session["session_id"], session["engine_token"]), max_size=None
    ) as ws:
        heard = await ask(ws, type="audio", data=clip, avatar_id="avatar_tutor_13")
        reply = await receive(ws)
    assert heard["type"] == "transcription" and reply["type"] == "video"


PLAY_AND_LOOK = """async () => {
  const v = document.getElementById('v');
  if (v.readyState < 2) {
    await new Promise((ok, no) => {
      v.onloadeddata = ok;
      v.onerror = () => no(v.error && v.error.message);
    });
  }
  await v.play();
  await new Promise(r => setTimeout(r, 700));
  const c = document.getElementById('c').getContext('2d');
  c.drawImage(v, 0, 0, 64, 64);
  const px = c.getImageData(0, 0, 64, 64).data;
  let lit = 0;
  for (let i = 0; i < px.length; i += 4) lit += px[i] + px[i + 1] + px[i + 2] > 60;
  return {width: v.videoWidth, height: v.videoHeight, duration: v.duration,
          time: v.currentTime, lit, error: v.error};
}"""


async def test_the_mp4_plays_in_chromium(engine: EngineProcess, tmp_path: Path) -> None:
    reply = await video_reply(engine, "Say hello to the class.", "avatar_tutor_13", 605)
    page_html = (
        f'<video id="v" muted playsinline src="data:video/mp4;base64,{reply["video"]}"></video>'
        '<canvas id="c" width="64" height="64"></canvas>'
    )
    async with chromium() as browser:
        page = await browser.new_page()
        await page.set_content(page_html)
        state = await page.evaluate(PLAY_AND_LOOK)
        await page.screenshot(path=str(tmp_path / "video.png"))
    assert state["error"] is None and (state["width"], state["height"]) == (512, 512), state
    assert state["duration"] > 1 and state["time"] > 0.3, state  # it plays
    assert state["lit"] > 2000, state  # and shows a picture, not black
