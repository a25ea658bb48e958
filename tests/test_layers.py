"""The layout is the architecture: each package imports only the layers below it.

    orchestrator ──▶ webrtc ──▶ media
         │                        ▲
         └──────▶ triton_ops ─────┘   (build scripts)
    benchmarks ──▶ orchestrator, webrtc, triton_ops, media   model_repository: self-contained

Every import in every module counts, also those inside functions and `TYPE_CHECKING` blocks.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

OURS = {"orchestrator", "webrtc", "media", "triton_ops", "benchmarks", "model_repository", "tests"}
ALLOWED: dict[str, set[str]] = {
    "media": set(),
    "webrtc": {"media"},
    "triton_ops": {"media"},
    "orchestrator": {"webrtc", "media", "triton_ops"},
    "benchmarks": {"orchestrator", "webrtc", "triton_ops", "media"},
    "model_repository": set(),
}
# what the floor must not stand on: a Triton client or the web framework
FORBIDDEN_THIRD_PARTY: dict[str, set[str]] = {
    "media": {"tritonclient", "grpc", "fastapi", "starlette", "uvicorn"},
    "webrtc": {"tritonclient", "grpc", "fastapi", "starlette", "uvicorn"},
}


def imported_roots(path: Path) -> set[str]:
    """The top-level names of every absolute import in one file."""
    roots = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def violations(root: Path) -> list[str]:
    """Every import that breaks the layering, as `file: imports name`."""
    found = []
    for package, allowed in ALLOWED.items():
        for path in sorted((root / package).rglob("*.py")):
            if any(part.startswith(".") or part == "__pycache__" for part in path.parts):
                continue
            for name in sorted(imported_roots(path)):
                ours_but_not_allowed = name in OURS and name != package and name not in allowed
                if ours_but_not_allowed or name in FORBIDDEN_THIRD_PARTY.get(package, set()):
                    found.append(f"{path.relative_to(root)}: imports {name}")
    return found


def test_every_package_imports_only_the_layers_below_it() -> None:
    assert violations(ROOT) == []


def test_the_check_catches_an_upward_import_and_a_forbidden_dependency(tmp_path: Path) -> None:
    (tmp_path / "media").mkdir()
    (tmp_path / "media" / "audio.py").write_text("import numpy\nimport tritonclient.grpc\n")
    (tmp_path / "webrtc").mkdir()
    (tmp_path / "webrtc" / "peers.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from orchestrator.x import y\n"
    )
    (tmp_path / "benchmarks").mkdir()
    (tmp_path / "benchmarks" / "load.py").write_text(
        "def f():\n    from tests.support import x\n    from media import audio\n"
    )
    assert sorted(violations(tmp_path)) == [
        "benchmarks/load.py: imports tests",
        "media/audio.py: imports tritonclient",
        "webrtc/peers.py: imports orchestrator",
    ]
