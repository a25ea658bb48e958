"""Speech from espeak-ng with the time of every phoneme, through its C library (ctypes).

espeak-ng reports each phoneme as it synthesizes it (IPA names, positions in ms), so its
many voices and voice variants give the lip-sync network labelled speakers that are not ours.
Needs Debian's espeak-ng (libespeak-ng1), which `make` installs.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

AUDIO_OUTPUT_SYNCHRONOUS = 2
INITIALIZE_PHONEME_EVENTS = 0x0001
INITIALIZE_PHONEME_IPA = 0x0002
EVENT_LIST_TERMINATED = 0
EVENT_PHONEME = 7
POS_CHARACTER = 1
CHARS_UTF8 = 1


class _Id(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", _Id),
    ]


_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event)
)


@dataclass(frozen=True)
class Timed:
    audio: npt.NDArray[np.float32]  # at `rate`
    rate: int
    phonemes: list[str]  # IPA, as espeak-ng names them
    starts_s: npt.NDArray[np.float64]


class Espeak:
    def __init__(self) -> None:
        path = ctypes.util.find_library("espeak-ng") or "libespeak-ng.so.1"
        self.lib = ctypes.CDLL(path)
        self.lib.espeak_Initialize.restype = ctypes.c_int
        options = INITIALIZE_PHONEME_EVENTS | INITIALIZE_PHONEME_IPA
        self.rate = int(self.lib.espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 200, None, options))
        if self.rate <= 0:
            raise RuntimeError("espeak-ng did not start")
        self._samples: list[npt.NDArray[np.int16]] = []
        self._events: list[tuple[str, int]] = []
        self._callback = _CALLBACK(self._collect)  # kept: the library calls back into it
        self.lib.espeak_SetSynthCallback(self._callback)

    def _collect(self, wav: ctypes._Pointer, count: int, events: ctypes._Pointer) -> int:  # type: ignore[type-arg]
        if wav and count > 0:
            self._samples.append(np.ctypeslib.as_array(wav, shape=(count,)).copy())
        index = 0
        while events[index].type != EVENT_LIST_TERMINATED:
            event = events[index]
            if event.type == EVENT_PHONEME:
                name = bytes(event.id.string).split(b"\0")[0].decode("utf-8", "replace")
                self._events.append((name, event.audio_position))
            index += 1
        return 0

    def speak(self, text: str, voice: str = "en-us", rate_wpm: int = 160, pitch: int = 50) -> Timed:
        self._samples, self._events = [], []
        if self.lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise ValueError(f"espeak-ng has no voice {voice!r}")
        self.lib.espeak_SetParameter(1, rate_wpm, 0)  # espeakRATE
        self.lib.espeak_SetParameter(3, pitch, 0)  # espeakPITCH
        data = text.encode("utf-8") + b"\0"
        self.lib.espeak_Synth(data, len(data), 0, POS_CHARACTER, 0, CHARS_UTF8, None, None)
        self.lib.espeak_Synchronize()
        audio = (
            np.concatenate(self._samples).astype(np.float32) / 32768.0
            if self._samples
            else np.zeros(0, np.float32)
        )
        names = [name for name, _ in self._events]
        starts = np.array([ms / 1000.0 for _, ms in self._events])
        return Timed(audio, self.rate, names, starts)
