"""Reads a CTranslate2 `model.bin`: a header, named tensors, then aliases.

Layout (CTranslate2's ModelSpec._serialize, binary version 6): uint32 version, string spec
name, uint32 revision, uint32 count, then per tensor: string name, uint8 rank, uint32 dims,
uint8 dtype id, uint32 byte count, raw bytes; then uint32 alias count and (alias, target)
string pairs. A string is uint16 length (with its NUL) and the bytes.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import numpy.typing as npt

_DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16}


class CT2Model:
    def __init__(self, spec: str, tensors: dict[str, npt.NDArray[Any]]) -> None:
        self.spec = spec
        self.tensors = tensors

    def __getitem__(self, name: str) -> npt.NDArray[Any]:
        return self.tensors[name]

    def f32(self, name: str) -> npt.NDArray[Any]:
        return self.tensors[name].astype(np.float32)

    def scalar(self, name: str) -> int:
        return int(self.tensors[name].reshape(-1)[0])


def _string(file: BinaryIO) -> str:
    (length,) = struct.unpack("<H", file.read(2))
    return file.read(length)[:-1].decode("utf-8")


def _unpack(file: BinaryIO, fmt: str) -> tuple[int, ...]:
    return struct.unpack(fmt, file.read(struct.calcsize(fmt)))


def read_ct2(path: Path) -> CT2Model:
    tensors: dict[str, npt.NDArray[Any]] = {}
    with path.open("rb") as file:
        (version,) = _unpack(file, "<I")
        if version != 6:
            raise ValueError(f"{path}: CTranslate2 binary version {version}; this reader knows 6")
        spec = _string(file)
        _unpack(file, "<I")  # spec revision
        (count,) = _unpack(file, "<I")
        for _ in range(count):
            name = _string(file)
            (rank,) = _unpack(file, "<B")
            dims = _unpack(file, f"<{rank}I") if rank else ()
            (dtype,) = _unpack(file, "<B")
            (size,) = _unpack(file, "<I")
            if dtype not in _DTYPES:
                raise ValueError(f"{name}: unsupported dtype id {dtype}")
            tensors[name] = np.frombuffer(file.read(size), dtype=_DTYPES[dtype]).reshape(dims)
        (aliases,) = _unpack(file, "<I")
        for _ in range(aliases):
            alias, target = _string(file), _string(file)
            tensors[alias] = tensors[target]
    return CT2Model(spec, tensors)
