"""Tensor contracts of the models in `model_repository/`, declared once.

Each model's config.pbtxt, the orchestrator's client code and the perf_analyzer input data are
checked against these declarations (tests/triton_ops/test_contracts.py holds them together).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt

# Triton's wire names for tensor types, and the numpy types that carry them.
NUMPY_DTYPES: dict[str, npt.DTypeLike] = {
    "BYTES": np.object_,
    "FP32": np.float32,
    "FP16": np.float16,
    "INT32": np.int32,
    "INT64": np.int64,
    "BOOL": np.bool_,
    "UINT8": np.uint8,
}


@dataclass(frozen=True)
class TensorSpec:
    name: str
    datatype: str  # Triton wire type: "FP32", "BYTES", ...
    dims: tuple[int, ...]  # per request, without the batch dimension; -1 is variable

    @property
    def config_type(self) -> str:
        """The type as config.pbtxt spells it (TYPE_STRING for BYTES)."""
        return "TYPE_STRING" if self.datatype == "BYTES" else f"TYPE_{self.datatype}"

    @property
    def numpy_dtype(self) -> npt.DTypeLike:
        return NUMPY_DTYPES[self.datatype]


@dataclass(frozen=True)
class ModelContract:
    name: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]

    def input(self, name: str) -> TensorSpec:
        return next(spec for spec in self.inputs if spec.name == name)

    def output(self, name: str) -> TensorSpec:
        return next(spec for spec in self.outputs if spec.name == name)

    @property
    def output_names(self) -> list[str]:
        return [spec.name for spec in self.outputs]


# Text to speech: one utterance of UTF-8 text in; mono float PCM out, with the phonemes it
# spoke and how many samples each one lasted (sum(DURATIONS) == len(AUDIO)). The sample
# rate is the model's config parameter "sample_rate".
TTS = ModelContract(
    name="tts",
    inputs=(TensorSpec("TEXT", "BYTES", (1,)),),
    outputs=(
        TensorSpec("AUDIO", "FP32", (-1,)),
        TensorSpec("PHONEMES", "BYTES", (-1,)),
        TensorSpec("DURATIONS", "INT32", (-1,)),
    ),
)

# Speech recognition: one utterance of 16 kHz mono float PCM and its language ("" detects
# it) in; the text, the language it was read as, P(no speech) and the mean token log-prob out.
ASR = ModelContract(
    name="asr",
    inputs=(TensorSpec("AUDIO", "FP32", (-1,)), TensorSpec("LANGUAGE", "BYTES", (1,))),
    outputs=(
        TensorSpec("TEXT", "BYTES", (1,)),
        TensorSpec("DETECTED_LANGUAGE", "BYTES", (1,)),
        TensorSpec("NO_SPEECH_PROB", "FP32", (1,)),
        TensorSpec("AVG_LOGPROB", "FP32", (1,)),
    ),
)


def tts_contract(model_name: str) -> ModelContract:
    """Every voice model speaks the TTS contract under its own model name."""
    return replace(TTS, name=model_name)


TTS_ZH = tts_contract("tts_zh")  # Mandarin

# Lip-sync: one utterance of 16 kHz mono float PCM in; per video frame (the "fps" parameter,
# 25) the weight of each of the 15 visemes (media/avatar/visemes.py order) out.
LIPSYNC = ModelContract(
    name="lipsync",
    inputs=(TensorSpec("AUDIO", "FP32", (-1,)),),
    outputs=(TensorSpec("VISEMES", "FP32", (-1, 15)),),
)

# Sentence embedding for retrieval: a text and whether it is a "query" or a "passage" (asymmetric
# models such as e5 embed the two differently) in; a unit-length vector out.
EMBED = ModelContract(
    name="embed",
    inputs=(TensorSpec("TEXT", "BYTES", (1,)), TensorSpec("MODE", "BYTES", (1,))),
    outputs=(TensorSpec("EMBEDDING", "FP32", (-1,)),),
)


def embed_contract(model_name: str) -> ModelContract:
    """Every embedding model speaks the EMBED contract under its own model name."""
    return replace(EMBED, name=model_name)


EMBED_ZH = embed_contract("embed_zh")  # multilingual (Mandarin)

# Face detection (photo avatars): one RGB picture letterboxed to 128 × 128 in; its faces out,
# best first, one row each: score, box (xmin, ymin, xmax, ymax) and six keypoints (x, y: the
# subject's right eye, left eye, nose tip, mouth centre, right ear, left ear), all as fractions
# of the picture.
FACE_DETECT = ModelContract(
    name="face_detect",
    inputs=(TensorSpec("IMAGE", "UINT8", (128, 128, 3)),),
    outputs=(TensorSpec("FACES", "FP32", (-1, 17)),),
)

# Face landmarks (photo avatars): one RGB face crop, 192 × 192, in; MediaPipe's 468 face-mesh
# points (x, y, z as fractions of the crop) and the confidence that the crop holds a face out.
FACE_MESH = ModelContract(
    name="face_mesh",
    inputs=(TensorSpec("IMAGE", "UINT8", (192, 192, 3)),),
    outputs=(TensorSpec("LANDMARKS", "FP32", (468, 3)), TensorSpec("PRESENCE", "FP32", (1,))),
)

# Voice activity (Silero): one 32 ms chunk at 16 kHz after the previous chunk's last 64 samples,
# with the stream's recurrent state, in; the probability of speech and the next state out.
VAD = ModelContract(
    name="vad",
    inputs=(TensorSpec("AUDIO", "FP32", (576,)), TensorSpec("STATE", "FP32", (2, 128))),
    outputs=(TensorSpec("SPEECH", "FP32", (1,)), TensorSpec("NEXT_STATE", "FP32", (2, 128))),
)

# End of turn (smart-turn): the last seconds of a student's turn (16 kHz) in; the probability
# that they have finished out.
TURN = ModelContract(
    name="turn",
    inputs=(TensorSpec("AUDIO", "FP32", (-1,)),),
    outputs=(TensorSpec("COMPLETE", "FP32", (1,)),),
)

CONTRACTS: dict[str, ModelContract] = {
    contract.name: contract
    for contract in (TTS, TTS_ZH, ASR, LIPSYNC, EMBED, EMBED_ZH, FACE_DETECT, FACE_MESH, VAD, TURN)
}
