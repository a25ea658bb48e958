"""Imports the model repository's own Python modules into our build tools."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType

REPOSITORY = Path(__file__).resolve().parent.parent / "model_repository"


def import_model_module(name: str, folder: Path, repository: Path = REPOSITORY) -> ModuleType:
    """`name` from a model's `folder`, with the repository's shared graph_runners importable.

    No bytecode is written: a __pycache__ folder at the repository's top level is a folder
    Triton would try to load as a model.
    """
    sys.dont_write_bytecode = True
    for path in (repository, folder):
        if str(path) not in sys.path:
            sys.path.insert(0, str(path))
    return importlib.import_module(name)
