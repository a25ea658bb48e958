"""Tutor profiles and voices, from one TOML file (config/tutors.toml)."""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, ValidationError, model_validator


class LLMEndpoint(BaseModel):
    """An OpenAI-compatible chat endpoint (vLLM, TensorRT-LLM, Ollama, a cloud API)."""

    model_config = ConfigDict(extra="forbid")

    base_url: HttpUrl  # e.g. http://vllm:8000/v1
    model: str
    api_key_env: str | None = Field(
        default=None, description="Name of the environment variable that holds the API key."
    )
    temperature: float = Field(default=0.4, ge=0, le=2)
    max_tokens: int = Field(default=400, ge=1)
    first_token_timeout_s: float = Field(default=15.0, gt=0)
    total_timeout_s: float = Field(default=60.0, gt=0)
    fallback_to_embedded: bool = Field(
        default=False, description="Answer with the embedded engine when the endpoint fails."
    )


class Voice(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str = Field(description="The Triton model that speaks it (TTS contract).")
    language: str


class TutorProfile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: int
    name: str
    persona: str
    language: Literal["en", "zh"] | None = Field(
        default=None,
        description="What the tutor speaks and hears; unset: speech input is auto-detected.",
    )
    voice: str
    avatar: str | None = None
    kb_id: str | None = None
    greeting: str | None = None
    llm: LLMEndpoint | None = None


class TutorFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    voices: dict[str, Voice]
    tutors: list[TutorProfile]

    @model_validator(mode="after")
    def _references_resolve(self) -> TutorFile:
        seen: set[int] = set()
        for tutor in self.tutors:
            if tutor.id in seen:
                raise ValueError(f"tutor id {tutor.id} appears twice")
            seen.add(tutor.id)
            if tutor.voice not in self.voices:
                raise ValueError(
                    f"tutor {tutor.id} uses voice {tutor.voice!r}; voices: {sorted(self.voices)}"
                )
        return self


class TutorCatalog:
    def __init__(self, file: TutorFile) -> None:
        self.voices = file.voices
        self._tutors = {tutor.id: tutor for tutor in file.tutors}

    @classmethod
    def load(cls, path: Path) -> TutorCatalog:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
            return cls(TutorFile.model_validate(data))
        except (OSError, tomllib.TOMLDecodeError, ValidationError) as error:
            raise ValueError(f"cannot load tutor profiles from {path}: {error}") from error

    def __iter__(self) -> Iterator[TutorProfile]:
        return iter(self._tutors.values())

    def get(self, tutor_id: int) -> TutorProfile | None:
        return self._tutors.get(tutor_id)

    @property
    def ids(self) -> list[int]:
        return sorted(self._tutors)

    def voice_of(self, tutor: TutorProfile) -> Voice:
        return self.voices[tutor.voice]
