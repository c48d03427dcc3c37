"""How romdask writes attributes and arrays: strict and lenient JSON conversion, Zarr compressors.

Light on purpose (numpy and zarr only): the online artifact and the snapshot store both use it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import zarr

__all__ = ["compressors", "jsonable", "plain"]


def plain(obj: Any, where: str) -> Any:
    """``obj`` as plain JSON types (tuples -> lists, numpy -> Python), or ValueError naming
    ``where`` for anything else (strict: for artifacts that are validated when read back)."""
    if isinstance(obj, Mapping):
        out = {}
        for k, v in obj.items():
            if not isinstance(k, str):
                raise ValueError(f"{where}: keys must be strings for JSON; got {k!r}.")
            out[k] = plain(v, f"{where}[{k!r}]")
        return out
    if isinstance(obj, (list, tuple)):
        return [plain(v, f"{where}[{i}]") for i, v in enumerate(obj)]
    if isinstance(obj, np.ndarray):
        if obj.dtype.kind not in "biuf":
            raise ValueError(f"{where}: only numeric arrays are JSON-serializable; got {obj.dtype}.")
        return obj.tolist()
    if isinstance(obj, np.generic):
        return plain(obj.item(), where)
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise ValueError(
        f"{where}: {type(obj).__name__} is not JSON-serializable; give numbers, strings, lists "
        "and dicts only."
    )


def jsonable(obj: Any) -> Any:
    """``obj`` with numpy scalars / arrays, paths and non-finite floats turned into JSON types
    (lenient: for descriptive attributes such as a run's metadata)."""
    if isinstance(obj, Mapping):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, float) and not np.isfinite(obj):
        return str(obj)
    return obj


def compressors(compression: str | None) -> list | None:
    """The zarr ``compressors`` argument for a compression name: "lz4" (Blosc lz4, byte
    shuffle), "zstd" or None."""
    if compression is None or compression == "none":
        return None
    if compression == "lz4":
        return [zarr.codecs.BloscCodec(cname="lz4", clevel=5, shuffle="shuffle")]
    if compression == "zstd":
        return [zarr.codecs.BloscCodec(cname="zstd", clevel=3, shuffle="shuffle")]
    raise ValueError(f"unknown compression {compression!r}; use 'lz4' (default), 'zstd' or None")
