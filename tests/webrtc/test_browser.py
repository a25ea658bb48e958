"""The demo page in real headless Chromium: session over REST, socket, WebRTC, a typed question
answered live with a moving mouth, a spoken question recorded by MediaRecorder, and hands-free:
a question heard from the fake microphone with no button pressed, and talking over the tutor."""

from __future__ import annotations

import asyncio
import wave
from pathlib import Path

import numpy as np
import pytest
from playwright.async_api import async_playwright

from benchmarks.harness import portraits
from benchmarks.harness.processes import EngineProcess
from benchmarks.harness.speech import piper_speech, silence
from media.audio import resample, to_int16
from media.avatar.photo.avatar import PhotoAvatar
from tests.support.browser import FLAGS, chromium_path

pytestmark = pytest.mark.serving

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"

STATS = """async () => {
  const stats = await window.demo.pc.getStats();
  const out = {video: 0, audioEnergy: 0, audioSamples: 0};
  stats.forEach((s) => {
    if (s.type === 'inbound-rtp' && s.kind === 'video') out.video = s.framesDecoded || 0;
    if (s.type === 'inbound-rtp' && s.kind === 'audio') {
      out.audioEnergy = s.totalAudioEnergy || 0;
      out.audioSamples = s.totalSamplesReceived || 0;
    }
  });
  return out;
}"""

# The video element's current picture, 512 × 512, as RGBA bytes.
PICTURE = """const v = document.getElementById('avatar');
  const c = document.createElement('canvas');
  c.width = 512; c.height = 512;
  const g = c.getContext('2d');
  g.drawImage(v, 0, 0, 512, 512);"""

# How much mouth shows: pixels near the mouth that differ from the skin at the box's edges.
MOUTH = (
    "() => {"
    + PICTURE
    + """
  const px = g.getImageData(196, 278, 120, 68).data;
  const at = (x, y) => [0, 1, 2].map((k) => px[(y * 120 + x) * 4 + k]);
  const skin = at(2, 2);
  let area = 0;
  for (let y = 0; y < 68; y++) for (let x = 0; x < 120; x++) {
    const p = at(x, y);
    if (Math.abs(p[0] - skin[0]) + Math.abs(p[1] - skin[1]) + Math.abs(p[2] - skin[2]) > 60) area++;
  }
  return area;
}"""
)


def fake_microphone(
    path: Path, question: str = "What is the biggest planet?", after_s: float = 0.3
) -> Path:
    """What Chromium's fake capture device plays: `after_s` of quiet, a question, then quiet."""
    speech = resample(*piper_speech(question, varied=False), 48000)
    pcm = np.concatenate([silence(after_s, 48000)[0], speech, silence(20.0, 48000)[0]])
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(48000)
        out.writeframes(to_int16(pcm).tobytes())
    return path


async def sample(page, script: str, count: int, every_s: float) -> list[float]:  # type: ignore[no-untyped-def]
    values = []
    for _ in range(count):
        values.append(await page.evaluate(script))
        await asyncio.sleep(every_s)
    return values


async def test_the_demo_page_talks_live_in_chromium(engine: EngineProcess, tmp_path: Path) -> None:
    microphone = fake_microphone(tmp_path / "microphone.wav")
    ARTIFACTS.mkdir(exist_ok=True)
    async with async_playwright() as playwright:
        # this test holds to talk
        browser, page = await open_demo(playwright, engine, microphone, "950", hands_free=False)
        await page.wait_for_function(
            "window.demo.pc && window.demo.pc.connectionState === 'connected'", timeout=15000
        )
        await page.wait_for_function(
            "document.getElementById('avatar').currentTime > 1", timeout=15000
        )

        before = await page.evaluate(STATS)
        idle = await sample(page, MOUTH, 10, 0.12)
        await page.fill("#text", "What is a volcano?")
        await page.click("#send")
        await page.wait_for_function(
            "document.querySelector('#log .assistant') !== null", timeout=30000
        )
        talking = await sample(page, MOUTH, 25, 0.12)
        after = await page.evaluate(STATS)
        await page.screenshot(path=str(ARTIFACTS / "webrtc-demo.png"))

        assert after["video"] - before["video"] > 50  # frames keep arriving and decoding
        assert after["audioEnergy"] > before["audioEnergy"] + 1e-3  # the tutor was heard
        assert np.std(talking) > 3 * np.std(idle) + 20, (idle, talking)  # the mouth moved
        assert "volcano" in (await page.inner_text("#log")).lower()

        # Hold to talk: MediaRecorder (WebM/Opus) → `audio` → transcription → a live answer
        await page.hover("#talk")
        await page.mouse.down()
        await asyncio.sleep(3.0)
        await page.mouse.up()
        await page.wait_for_function(
            "[...document.querySelectorAll('#log .user')].some(e => /planet/i.test(e.textContent))",
            timeout=30000,
        )
        await browser.close()


DARK_IN_BOX = (
    "([x, y, w, h]) => {"
    + PICTURE
    + """
  const px = g.getImageData(x, y, w, h).data;
  let dark = 0;
  for (let i = 0; i < px.length; i += 4) dark += Math.max(px[i], px[i + 1], px[i + 2]) < 70;
  return dark;
}"""
)

FRAME = "() => {" + PICTURE + "return Array.from(g.getImageData(0, 0, 512, 512).data);}"


async def test_the_demo_page_makes_a_photo_avatar_and_it_talks(
    engine: EngineProcess, tmp_path: Path
) -> None:
    portrait_file = tmp_path / "astronaut.png"
    portrait_file.write_bytes(portraits.encoded(portraits.astronaut()))
    ARTIFACTS.mkdir(exist_ok=True)
    async with async_playwright() as playwright:
        browser, page = await demo_page(playwright, engine)
        await page.set_input_files("#photo", str(portrait_file))
        await page.fill("#photoname", "Commander")
        await page.click("#upload")
        await page.wait_for_function(
            "document.getElementById('uploadstatus').textContent.startsWith('Ready')",
            timeout=60000,
        )
        avatar_id = await page.eval_on_selector("#avatarpick", "s => s.value")
        assert avatar_id.startswith("photo_")
        avatar = PhotoAvatar.load(engine.workdir / "data" / "avatars" / avatar_id)
        await page.fill("#student", "951")
        await page.click("#start")
        await page.wait_for_function(
            "document.getElementById('avatar').currentTime > 1", timeout=15000
        )
        shown = np.array(await page.evaluate(FRAME), dtype=np.uint8).reshape(512, 512, 4)[..., :3]
        assert np.abs(shown.astype(int) - avatar.portrait).mean() < 12  # the photo, not a cartoon
        box = list(avatar.mouth_box)
        idle = await sample_with(page, DARK_IN_BOX, box, 10)
        await page.fill("#text", "What is a volcano?")
        await page.click("#send")
        await page.wait_for_function(
            "document.querySelector('#log .assistant') !== null", timeout=30000
        )
        talking = await sample_with(page, DARK_IN_BOX, box, 25)
        await page.evaluate("window.scrollTo(0, 0)")
        await page.screenshot(path=str(ARTIFACTS / "webrtc-demo-photo.png"))
        await browser.close()
    assert max(talking) > max(idle) + 50 and np.std(talking) > 3 * np.std(idle) + 10, (
        idle,
        talking,
    )


async def sample_with(page, script: str, argument: object, count: int) -> list[float]:  # type: ignore[no-untyped-def]
    values = []
    for _ in range(count):
        values.append(await page.evaluate(script, argument))
        await asyncio.sleep(0.12)
    return values


# The log shows the student saying `word`.
SAID = """(word) => [...document.querySelectorAll('#log .user')]
  .some((e) => e.textContent.toLowerCase().includes(word))"""


async def demo_page(playwright, engine: EngineProcess, microphone: Path | None = None):  # type: ignore[no-untyped-def]
    """The demo page loaded in Chromium; `microphone`: what its fake microphone plays."""
    flags = list(FLAGS)
    if microphone is not None:
        flags += [
            "--use-fake-ui-for-media-stream",
            "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-audio-capture={microphone}%noloop",
        ]
    browser = await playwright.chromium.launch(executable_path=chromium_path(), args=flags)
    context = await browser.new_context(viewport={"width": 1100, "height": 900})
    # loopback ICE candidates need these permissions
    await context.grant_permissions(["camera", "microphone"], origin=engine.base_url)
    page = await context.new_page()
    await page.goto(engine.base_url + "/demo")
    await page.wait_for_function("document.querySelectorAll('#tutor option').length > 0")
    return browser, page


async def open_demo(  # type: ignore[no-untyped-def]
    playwright, engine: EngineProcess, microphone: Path, student: str, hands_free: bool = True
):
    """The demo page with a fake microphone playing `microphone`, started as `student`."""
    browser, page = await demo_page(playwright, engine, microphone)
    await page.select_option("#tutor", "13")
    await page.fill("#student", student)
    if not hands_free:
        await page.uncheck("#handsfree")
    await page.click("#start")
    return browser, page


async def test_the_demo_page_answers_a_question_spoken_hands_free(
    engine: EngineProcess, tmp_path: Path
) -> None:
    microphone = fake_microphone(tmp_path / "question.wav", "What is a volcano?", after_s=3.0)
    async with async_playwright() as playwright:
        browser, page = await open_demo(playwright, engine, microphone, "952")
        await page.wait_for_function("window.demo.mic !== null && window.demo.listening")
        before = await page.evaluate(STATS)
        # no button pressed: the microphone was heard
        await page.wait_for_function(SAID, arg="volcano", timeout=30000)
        await page.wait_for_function(
            "document.querySelector('#log .assistant') !== null", timeout=30000
        )
        await page.wait_for_function("window.demo.voice === 'The tutor is speaking'", timeout=10000)
        await asyncio.sleep(2.0)
        after = await page.evaluate(STATS)
        await page.evaluate("window.scrollTo(0, 0)")
        await page.screenshot(path=str(ARTIFACTS / "webrtc-demo-hands-free.png"))
        await browser.close()
    assert after["audioEnergy"] > before["audioEnergy"] + 1e-3  # the answer was heard


async def test_speaking_over_the_tutor_in_the_demo_page_interrupts_it(
    engine: EngineProcess, tmp_path: Path
) -> None:
    """The student asks by typing, then talks over the answer: the tutor stops for them."""
    microphone = fake_microphone(tmp_path / "barge_in.wav", "What is a magnetic pole?", 9.0)
    async with async_playwright() as playwright:
        browser, page = await open_demo(playwright, engine, microphone, "953")
        await page.wait_for_function("window.demo.mic !== null && window.demo.listening")
        await page.fill("#text", "Tell me everything about magnets.")
        await page.click("#send")
        await page.wait_for_function("window.demo.voice === 'The tutor is speaking'", timeout=30000)
        await page.wait_for_function(
            "document.getElementById('log').textContent.includes('the tutor stopped: barge_in')",
            timeout=20000,
        )
        await page.wait_for_function(SAID, arg="magnetic", timeout=30000)
        await browser.close()
