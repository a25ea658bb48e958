"""The live stream's timeline: speech lands on frame boundaries, audio and video agree, and
an interruption silences both at once."""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from media.audio import PLAYBACK_RATE
from media.avatar import draw
from media.avatar.animator import FaceAnimator
from media.avatar.registry import Avatar, load_avatar
from media.avatar.visemes import INDEX, silence
from webrtc.stream import AUDIO_FRAME, AvatarStream


@pytest.fixture(scope="module")
def avatar(tmp_path_factory: pytest.TempPathFactory) -> Avatar:
    folder: Path = tmp_path_factory.mktemp("avatars")
    draw.write_avatar(draw.STYLES[1], folder)
    return load_avatar(folder / draw.STYLES[1].avatar_id)


def tone(seconds: float, rate: int = 22050) -> np.ndarray:
    return (0.5 * np.sin(np.arange(int(seconds * rate)) * 2 * np.pi * 200 / rate)).astype(
        np.float32
    )


def open_mouth(frames: int) -> np.ndarray:
    weights = np.zeros((frames, 15), dtype=np.float32)
    weights[:, INDEX["aa"]] = 1.0
    return weights


def test_speech_starts_on_a_frame_boundary_and_follows_what_is_queued(avatar: Avatar) -> None:
    stream = AvatarStream(avatar)
    first = stream.say(tone(1.0), 22050, open_mouth(25))
    second = stream.say(tone(0.5), 22050, open_mouth(13))
    assert first.start % stream.frame_samples == 0 and first.start > 0
    assert second.start == first.end  # back to back
    assert len(first.weights) == round(len(first.pcm) / stream.frame_samples)


@pytest.mark.parametrize("extra_samples", [0, 1, 400, 1000, 1919])
async def test_every_frame_of_an_utterance_renders_whatever_its_length(
    avatar: Avatar, extra_samples: int
) -> None:
    """Speech that ends inside a video frame fills that frame: its last samples once lay past
    the last row of mouth shapes, and rendering them killed the video track (seen at 4 users)."""
    stream = AvatarStream(avatar)
    pcm = tone(1.0, PLAYBACK_RATE)[: 10 * stream.frame_samples + extra_samples]
    utterance = stream.say(pcm, PLAYBACK_RATE, open_mouth(11))
    assert utterance.end % stream.frame_samples == 0 and len(utterance.pcm) >= len(pcm)
    assert len(utterance.weights) * stream.frame_samples == len(utterance.pcm)
    first = utterance.start // stream.frame_samples
    for index in range(first - 1, utterance.end // stream.frame_samples + 2):
        assert (await stream.video(index)).shape == (avatar.height, avatar.width, 3)


async def test_audio_and_video_show_the_same_moment(avatar: Avatar) -> None:
    stream = AvatarStream(avatar)
    utterance = stream.say(tone(1.0), 22050, open_mouth(25))
    first_frame = utterance.start // stream.frame_samples
    first_packet = utterance.start // AUDIO_FRAME
    assert np.abs(stream.audio(first_packet - 1)).max() == 0  # silence just before
    assert np.abs(stream.audio(first_packet)).max() > 10_000  # speech right at its start
    idle, speaking = await stream.video(first_frame - 1), await stream.video(first_frame)
    x, y = avatar.mouth_at
    h, w = avatar.mouths.shape[1:3]
    box = (slice(y - 6, y + h + 6), slice(x - 6, x + w + 6))
    assert np.abs(speaking[box].astype(int) - idle[box]).mean() > 5  # the mouth opened with it


async def test_a_stream_renders_the_same_mouths_as_one_whole_render(avatar: Avatar) -> None:
    """The stream renders two frames at a time; each batch's last mouth still blends with the
    frame after it. (Without that look-ahead every other frame lagged: the live mouth was
    measured a frame behind its sound.)"""
    rng = np.random.default_rng(3)
    weights = np.eye(15, dtype=np.float32)[rng.integers(0, 15, size=40)]
    stream = AvatarStream(avatar)
    utterance = stream.say(tone(1.6, PLAYBACK_RATE), PLAYBACK_RATE, weights)
    first = utterance.start // stream.frame_samples
    streamed = [await stream.video(index) for index in range(first + 45)]
    whole = FaceAnimator(avatar).speak(np.concatenate([silence(first), weights, silence(5)]))
    assert np.array_equal(np.stack(streamed), whole)


async def test_an_interruption_silences_audio_and_video_at_once(avatar: Avatar) -> None:
    stream = AvatarStream(avatar)
    await stream.wait_for(0)  # start the clock
    utterance = stream.say(tone(3.0), 22050, open_mouth(75))
    await asyncio.sleep(0.3)
    now = stream.playhead()
    assert stream.speaking
    assert stream.interrupt() == 1 and utterance.played.is_set()
    assert not stream.speaking
    packet = now // AUDIO_FRAME + 1
    assert np.abs(stream.audio(packet)).max() == 0
    frame = now // stream.frame_samples + 1
    assert np.array_equal(stream._weights(frame), np.eye(15, dtype=np.float32)[[0]])
    # the next reply is not queued behind the speech that was cut off
    following = stream.say(tone(0.5), 22050, open_mouth(13))
    assert following.start < utterance.end
    assert following.start - stream.playhead() <= stream.frame_samples


def test_an_utterance_knows_when_its_first_packet_left(avatar: Avatar) -> None:
    stream = AvatarStream(avatar)
    utterance = stream.say(tone(1.0), 22050, open_mouth(25))
    stream.audio(utterance.start // AUDIO_FRAME - 1)
    assert utterance.heard_at is None  # the packet before it holds none of its samples
    stream.audio(utterance.start // AUDIO_FRAME)
    assert utterance.heard_at is not None


def into_frame(stream: AvatarStream, index: int) -> None:
    """Sets the stream's clock a little way into frame `index`."""
    stream._started = time.monotonic() - (index * stream.frame_samples + 100) / PLAYBACK_RATE


def whole_render(avatar: Avatar, before: int, weights: np.ndarray, index: int) -> np.ndarray:
    return FaceAnimator(avatar).speak(np.concatenate([silence(before), weights, silence(3)]))[index]


async def test_speech_starts_on_the_next_frame_even_when_that_frame_was_rendered(
    avatar: Avatar,
) -> None:
    """Frames render two at a time, so the next frame is often ready before speech is queued;
    it is rendered again with the mouth rather than the speech waiting a frame or two."""
    stream = AvatarStream(avatar)
    now = 10
    await stream.video(now)  # renders `now` and `now + 1`, both idle
    into_frame(stream, now)
    utterance = stream.say(tone(1.0), 22050, open_mouth(25))
    first = utterance.start // stream.frame_samples
    assert first == now + 1
    assert np.array_equal(
        await stream.video(first), whole_render(avatar, first, utterance.weights, first)
    )


async def test_a_render_under_way_when_speech_comes_is_done_again(avatar: Avatar) -> None:
    stream = AvatarStream(avatar)
    now = 10
    rendering, release = threading.Event(), threading.Event()
    render = stream._render
    stream._resting = {}  # no picture at rest shown yet: the idle frame is rendered

    def slow_render(index: int, weights: np.ndarray) -> list[object]:
        rendering.set()
        release.wait(5)
        return render(index, weights)

    stream._render = slow_render  # type: ignore[method-assign]
    frame = asyncio.create_task(stream.video(now + 1))
    await asyncio.to_thread(rendering.wait, 5)
    into_frame(stream, now)
    utterance = stream.say(tone(1.0), 22050, open_mouth(25))
    release.set()
    first = utterance.start // stream.frame_samples
    assert first == now + 1
    rendered = await frame
    assert np.array_equal(rendered, whole_render(avatar, first, utterance.weights, first))


async def test_pictures_at_rest_are_rendered_once_for_every_stream_of_an_avatar(
    avatar: Avatar,
) -> None:
    fresh = replace(avatar)  # nothing of this avatar shown yet
    first, second = AvatarStream(fresh), AvatarStream(fresh)
    renders = {first: 0, second: 0}
    for stream in (first, second):

        def counted(*args: object, stream: AvatarStream = stream) -> list[object]:
            renders[stream] += 1
            return type(stream)._render(stream, *args)  # type: ignore[arg-type]

        stream._render = counted  # type: ignore[method-assign]
    count = 250
    shown = [await first.video(index) for index in range(count)]
    again = [await second.video(index) for index in range(count)]

    drawn = FaceAnimator(fresh)
    assert all(np.array_equal(a, b) for a, b in zip(shown, drawn.idle(count), strict=True))
    keys = drawn.rest_keys(0, silence(count), upcoming=silence(1), previous=silence(1))
    moving = {index // 2 for index, key in enumerate(keys) if key is None}  # batches of two
    assert moving  # a blink
    assert renders[second] == len(moving)  # the rest came from what the first stream showed
    assert renders[first] > renders[second]
    assert all(a is b for a, b, key in zip(shown, again, keys, strict=True) if key is not None)


def test_a_replys_first_words_start_without_their_leading_silence(avatar: Avatar) -> None:
    stream = AvatarStream(avatar)
    frame = 22050 // stream.fps  # one video frame at Piper's rate
    lead = np.concatenate([np.zeros(2 * frame), 0.001 * tone(0.04)]).astype(np.float32)
    speech = np.concatenate([lead, tone(0.5)])
    weights = np.concatenate([silence(3), open_mouth(13)])  # the mouth opens with the tone
    kept = stream.say(speech, 22050, weights)
    trimmed = stream.say(speech, 22050, weights, trim_silence=True)
    assert len(kept.pcm) - len(trimmed.pcm) == 3 * stream.frame_samples  # -60 dBFS is silence
    assert np.array_equal(trimmed.pcm, kept.pcm[3 * stream.frame_samples :])
    assert np.array_equal(trimmed.weights, kept.weights[3:])
    assert trimmed.weights[0, INDEX["aa"]] == 1.0  # the mouth still opens with the sound
    hushed = stream.say(0.02 * tone(0.5), 22050, open_mouth(13), trim_silence=True)
    assert len(hushed.pcm) == 13 * stream.frame_samples  # quiet speech is not silence
    nothing = stream.say(np.zeros(22050, np.float32), 22050, silence(25), trim_silence=True)
    assert len(nothing.pcm) == stream.frame_samples  # all silence: one frame is kept


def test_a_stream_behind_its_clock_skips_to_the_frame_due_and_says_so(avatar: Avatar) -> None:
    skipped: list[int] = []
    stream = AvatarStream(avatar, on_skip=skipped.append)
    stream._started = time.monotonic() - 2.0  # the clock is at frame 50
    assert stream.caught_up(48) == 48 and skipped == []  # 2 frames late: sent, not skipped
    assert stream.caught_up(40) in (50, 51)  # far behind: the frame due now
    assert skipped and skipped[0] in (10, 11)
