"""Triton Python-backend model: Mandarin text-to-speech with per-phoneme durations.

FastSpeech2 converted from TFLite takes one sequence at a time, so the requests of a dynamic
batch are spoken one after another, in queue order, and each is answered through its
response sender as soon as it is spoken; each request gets its own error.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import triton_python_backend_utils as pb_utils

sys.path.insert(0, str(Path(__file__).resolve().parent))
from zh_voice import SAMPLE_RATE, ZhVoice


class TritonPythonModel:
    def initialize(self, args: dict[str, str]) -> None:
        config = json.loads(args["model_config"])
        params = {key: value["string_value"] for key, value in config["parameters"].items()}
        folder = Path(args["model_repository"]) / args["model_version"]
        if int(params["sample_rate"]) != SAMPLE_RATE:
            raise pb_utils.TritonModelException(f"the voice speaks at {SAMPLE_RATE} Hz")
        provider = params.get("execution_provider", "CPUExecutionProvider")
        self.voice = ZhVoice(folder, int(params.get("intra_op_threads", "0")), (provider,))
        self.max_chars = int(params["max_chars"])

    def execute(self, requests: list) -> None:
        for request in requests:
            request.get_response_sender().send(
                self._speak(request), flags=pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL
            )

    def _speak(self, request):
        raw = pb_utils.get_input_tensor_by_name(request, "TEXT").as_numpy().reshape(-1)[0]
        text = (raw.decode("utf-8") if isinstance(raw, bytes) else str(raw)).strip()
        try:
            if not text:
                raise ValueError("TEXT is empty")
            if len(text) > self.max_chars:
                raise ValueError(f"TEXT has {len(text)} characters; the limit is {self.max_chars}")
            spoken = self.voice.speak(text)
        except ValueError as error:
            return pb_utils.InferenceResponse(error=pb_utils.TritonError(str(error)))
        return pb_utils.InferenceResponse(
            output_tensors=[
                pb_utils.Tensor("AUDIO", spoken.pcm[np.newaxis, :]),
                pb_utils.Tensor(
                    "PHONEMES", np.array([[p.encode() for p in spoken.phonemes]], dtype=np.object_)
                ),
                pb_utils.Tensor("DURATIONS", spoken.durations.astype(np.int32)[np.newaxis, :]),
            ]
        )
