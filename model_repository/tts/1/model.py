"""Triton Python-backend model: Piper text-to-speech with per-phoneme durations.

Each request is one utterance; its sentences become rows run through the voice with those of
every other request in the dynamic batch, `max_rows_per_run` rows to a padded ONNX run (one on
CPU). A request that cannot be spoken gets its own error.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import triton_python_backend_utils as pb_utils
from piper import PiperVoice
from piper.config import PiperConfig
from piper.const import BOS, EOS, PAD

sys.dont_write_bytecode = True  # a __pycache__ folder in the repository is a model to Triton
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # graph_runners
from graph_runners import onnxruntime_from_config

Sentence = tuple[list[str], np.ndarray, np.ndarray]  # phonemes, pcm, samples per phoneme id


@dataclass(frozen=True)
class Row:
    """One sentence of one request: a row of a voice run."""

    request: int
    slot: int  # its place among the request's sentences
    phonemes: list[str]
    ids: list[int]


class TritonPythonModel:
    def initialize(self, args: dict[str, str]) -> None:
        config = json.loads(args["model_config"])
        params = {key: value["string_value"] for key, value in config["parameters"].items()}
        version_dir = Path(args["model_repository"]) / args["model_version"]
        voice_path = version_dir / params["voice_file"]
        voice_config = json.loads(Path(f"{voice_path}.json").read_text(encoding="utf-8"))

        session = onnxruntime_from_config(params, voice_path).session
        self.voice = PiperVoice(session=session, config=PiperConfig.from_dict(voice_config))
        if self.voice.config.sample_rate != int(params["sample_rate"]):
            raise pb_utils.TritonModelException(
                f"voice speaks at {self.voice.config.sample_rate} Hz, config.pbtxt says "
                f"{params['sample_rate']}"
            )
        if len(session.get_outputs()) < 2:
            raise pb_utils.TritonModelException(
                f"{voice_path} has no duration output: run `python -m triton_ops.build_models`"
            )
        self.max_chars = int(params["max_chars"])
        self.max_rows = int(params["max_rows_per_run"])
        id_map = self.voice.config.phoneme_id_map
        self.ids_per_phoneme = {phoneme: len(ids) for phoneme, ids in id_map.items()}
        self.pad_ids = len(id_map[PAD])
        self.scales = np.array(
            [
                self.voice.config.noise_scale,
                self.voice.config.length_scale,
                self.voice.config.noise_w_scale,
            ],
            dtype=np.float32,
        )
        self.output_dtypes = {
            out["name"]: pb_utils.triton_string_to_numpy(out["data_type"])
            for out in config["output"]
        }

    def execute(self, requests: list) -> None:
        """Each request is answered as soon as its own sentences are spoken (through its
        response sender), not when the whole batch is: in a CPU batch run row by row, the
        request first in the queue is heard first."""
        rows: list[Row] = []
        spoken: dict[int, list[Sentence | None]] = {}
        for index, request in enumerate(requests):
            try:
                sentences = self._sentences(request)
            except ValueError as error:
                self._send(
                    request, pb_utils.InferenceResponse(error=pb_utils.TritonError(str(error)))
                )
                continue
            spoken[index] = [None] * len(sentences)
            rows += [
                Row(index, slot, phonemes, self.voice.phonemes_to_ids(phonemes))
                for slot, phonemes in enumerate(sentences)
            ]
        for done in self._synthesize([row.ids for row in rows]):
            for position, (pcm, id_samples) in done:
                row = rows[position]
                spoken[row.request][row.slot] = (row.phonemes, pcm, id_samples)
                if all(spoken[row.request]):
                    self._send(requests[row.request], self._response(spoken[row.request]))

    @staticmethod
    def _send(request, response) -> None:
        request.get_response_sender().send(
            response, flags=pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL
        )

    def _sentences(self, request) -> list[list[str]]:
        raw = pb_utils.get_input_tensor_by_name(request, "TEXT").as_numpy().reshape(-1)[0]
        text = raw.decode("utf-8", errors="strict") if isinstance(raw, bytes) else str(raw)
        text = text.strip()
        if not text:
            raise ValueError("TEXT is empty")
        if len(text) > self.max_chars:
            raise ValueError(f"TEXT has {len(text)} characters; the limit is {self.max_chars}")
        sentences = [
            [p for p in phonemes if p in self.ids_per_phoneme]
            for phonemes in self.voice.phonemize(text)
        ]
        sentences = [phonemes for phonemes in sentences if phonemes]
        if not sentences:
            raise ValueError("TEXT has nothing speakable in it")
        return sentences

    def _synthesize(self, id_rows: list[list[int]]):
        """Runs rows through the voice `max_rows` at a time; yields each run's rows as
        (row, (pcm, samples per phoneme id)). Several rows share a padded run shortest with
        shortest; one row per run goes in queue order."""
        order = list(range(len(id_rows)))
        if self.max_rows > 1:
            order.sort(key=lambda i: len(id_rows[i]))
        for start in range(0, len(order), self.max_rows):
            chunk = order[start : start + self.max_rows]
            lengths = np.array([len(id_rows[i]) for i in chunk], dtype=np.int64)
            batch = np.zeros((len(chunk), int(lengths.max())), dtype=np.int64)
            for row, i in enumerate(chunk):
                batch[row, : lengths[row]] = id_rows[i]
            wave, widths = self.voice.session.run(
                None, {"input": batch, "input_lengths": lengths, "scales": self.scales}
            )[:2]
            wave = wave.reshape(len(chunk), -1)
            id_samples = (widths.reshape(len(chunk), -1) * self.voice.config.hop_length).astype(
                np.int64
            )
            done = []
            for row, i in enumerate(chunk):
                samples = id_samples[row, : lengths[row]]
                pcm = wave[row, : int(samples.sum())]
                peak = float(np.abs(pcm).max()) if pcm.size else 0.0
                done.append((i, ((pcm / peak if peak > 1e-8 else pcm).astype(np.float32), samples)))
            yield done

    def _phoneme_samples(self, phonemes: list[str], id_samples: np.ndarray) -> np.ndarray:
        """Samples per phoneme: its ids plus the pad after it, as Piper aligns them."""
        counts = [self.ids_per_phoneme[BOS] + self.pad_ids]
        counts += [self.ids_per_phoneme[p] + self.pad_ids for p in phonemes]
        counts.append(self.ids_per_phoneme[EOS])
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        return np.add.reduceat(id_samples, starts)

    def _response(self, sentences: list[Sentence | None]):
        pcm = np.concatenate([audio for _, audio, _ in sentences])
        symbols: list[str] = []
        durations: list[np.ndarray] = []
        for phonemes, _, id_samples in sentences:
            symbols += [BOS, *phonemes, EOS]
            durations.append(self._phoneme_samples(phonemes, id_samples))
        tensors = {
            "AUDIO": pcm,
            "PHONEMES": np.array([s.encode("utf-8") for s in symbols], dtype=np.object_),
            "DURATIONS": np.concatenate(durations),
        }
        return pb_utils.InferenceResponse(
            output_tensors=[
                pb_utils.Tensor(name, value.astype(self.output_dtypes[name])[np.newaxis, :])
                for name, value in tensors.items()
            ]
        )
