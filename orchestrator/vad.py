"""Voice activity: Silero VAD, one 32 ms chunk of 16 kHz audio at a time, per microphone.

The network is recurrent: each stream carries its own state (and the last 64 samples, which
the next chunk sees as context). It runs here in the engine on ONNX Runtime by default — one
chunk costs ~0.1 ms, less than a gRPC round trip to Triton — or in Triton's `vad` model
(`ENGINE_VAD_RUNS_IN=triton`), which takes the state with each chunk and hands it back, so
that chunks of many streams batch. `benchmarks/listening.py` measures both.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from orchestrator.triton_client import TritonClient
from triton_ops.contracts import VAD

SAMPLE_RATE = 16_000
CHUNK = 512  # samples the network takes at 16 kHz (32 ms)
CONTEXT = 64  # samples of the previous chunk it sees before each one

Audio = npt.NDArray[np.float32]


@dataclass
class VadState:
    """One microphone's place in the network: its recurrent state and the last samples."""

    recurrent: Audio = field(default_factory=lambda: np.zeros((2, 1, 128), dtype=np.float32))
    context: Audio = field(default_factory=lambda: np.zeros(CONTEXT, dtype=np.float32))

    def window(self, chunk: Audio) -> Audio:
        """What the network reads for `chunk`: the context, then the chunk."""
        window = np.concatenate([self.context, chunk])
        self.context = chunk[-CONTEXT:].copy()
        return window


class VoiceActivity(Protocol):
    async def speech(self, state: VadState, chunk: Audio) -> float:
        """The probability that `chunk` (CHUNK samples, 16 kHz) is speech; advances `state`."""
        ...


class EngineVad:
    """Silero on ONNX Runtime in this process: one session, one thread, every stream."""

    def __init__(self, path: Path) -> None:
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        self._session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self._rate = np.array(SAMPLE_RATE, dtype=np.int64)

    async def speech(self, state: VadState, chunk: Audio) -> float:
        window = state.window(chunk)[np.newaxis]
        probability, state.recurrent = self._session.run(
            None, {"input": window, "state": state.recurrent, "sr": self._rate}
        )
        return float(probability[0, 0])


class TritonVad:
    """Silero in Triton (`vad`): the stream's state goes with each chunk and comes back."""

    def __init__(self, triton: TritonClient) -> None:
        self._triton = triton

    async def speech(self, state: VadState, chunk: Audio) -> float:
        window = state.window(chunk)[np.newaxis]
        out = await self._triton.infer(
            VAD, {"AUDIO": window, "STATE": state.recurrent.transpose(1, 0, 2)}
        )
        state.recurrent = np.ascontiguousarray(out["NEXT_STATE"].transpose(1, 0, 2))
        return float(out["SPEECH"][0, 0])
