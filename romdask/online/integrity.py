"""What a saved reduced model is, and whether it is intact: one checksum over the whole model and
a replacement that cannot destroy what romdask did not make.

The checksum (root attribute ``checksum``, scheme 1) covers every node of the Zarr group::

    checksum = {"scheme": 1,
                "nodes": {"modes_strain": sha256, ..., "@laws": sha256, "full/mesh@fingerprint": ...},
                "full": {"full/modes": sha256 of the bytes, ...},
                "sha256": sha256 of the canonical JSON of "nodes"}

An array's node digest is the sha256 of the canonical JSON ``{"dtype", "shape", "sha256"}`` (its
little-endian C-order bytes); each attribute of each group (``@key``, the root's ``checksum``
excepted) is a node of its own, its value as canonical JSON (so ``true`` is not ``2``). The core
arrays are hashed when the model is opened; the ``full/`` arrays, mesh-sized, keep their byte
digests in ``full`` (covered by their nodes) and are hashed when they are opened
(:func:`verify_full`). Models saved before the checksum (no ``checksum`` attribute) keep their
per-array ``checksums`` check only.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import re
import shutil
import socket
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import zarr

__all__ = ["SCHEME", "array_digest", "check_replaceable", "clean_stale_temporaries", "is_model_dir", "model_checksum",
           "replace_atomically", "replace_attributes", "temporary_name", "verify_full", "verify_model"]

SCHEME = 1
#: a temporary from another host is stale after this many seconds (its pid cannot be checked here)
FOREIGN_TMP_AGE = 24 * 3600.0


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))


def array_digest(arr: zarr.Array) -> str:
    """sha256 of the array's little-endian C-order bytes, read one chunk of rows at a time."""
    h = hashlib.sha256()
    dtype = arr.dtype.newbyteorder("<")
    rows = max(1, int(arr.chunks[0])) if arr.ndim else 1
    for start in range(0, max(1, int(arr.shape[0]) if arr.ndim else 1), rows):
        block = arr[start:start + rows] if arr.ndim else arr[...]
        h.update(np.ascontiguousarray(block, dtype=dtype).tobytes())
    return h.hexdigest()


def _read_digest(arr: zarr.Array, name: str) -> str:
    try:
        return array_digest(arr)
    except Exception as exc:  # a corrupted chunk fails in the codec
        raise ValueError(f"array {name!r} cannot be read (corrupted chunk?): {exc}") from None


def _nodes(root: zarr.Group, full_sha: Mapping[str, str] | None) -> tuple[dict[str, str], dict[str, str]]:
    """Node digests of every array and attribute (``full/`` bytes from ``full_sha`` when given)."""
    nodes: dict[str, str] = {}
    full: dict[str, str] = {}
    groups = [("", root)]
    for name, node in sorted(root.members(max_depth=None), key=lambda item: item[0]):
        if isinstance(node, zarr.Array):
            if name.startswith("full/") and full_sha is not None:
                sha = full_sha.get(name, "missing")
            else:
                sha = _read_digest(node, name)
            if name.startswith("full/"):
                full[name] = sha
            nodes[name] = _sha(_canonical({"dtype": str(node.dtype), "shape": list(node.shape), "sha256": sha}))
        else:
            groups.append((name, node))
    for name, group in groups:
        for key, value in group.attrs.asdict().items():
            if not (name == "" and key == "checksum"):
                nodes[f"{name}@{key}"] = _sha(_canonical(value))
    return nodes, full


def model_checksum(root: zarr.Group) -> dict[str, Any]:
    """The ``checksum`` attribute of a completely written model group (reads every array once)."""
    nodes, full = _nodes(root, None)
    return {"scheme": SCHEME, "nodes": nodes, "full": full, "sha256": _sha(_canonical(nodes))}


def _describe(node: str, change: str) -> str:
    if "@" in node:
        group, key = node.split("@", 1)
        return f"attribute {key!r} of the {'root' if not group else repr(group)} group ({change})"
    return f"array {node!r} ({'bytes, dtype or shape changed' if change == 'changed' else change})"


def verify_model(root: zarr.Group, path: Any) -> dict[str, Any] | None:
    """Check the whole-model checksum of ``root`` (the ``full/`` arrays by their recorded digests).

    Returns
    -------
    The checksum record, or None for a model saved before the checksum (no ``checksum`` attribute).

    Raises
    ------
    ValueError
        An unknown scheme, or a node that changed, was added or was removed, named.

    Notes
    -----
    Reads every array outside ``full/`` (the model's core: a few times ``8 r n`` bytes).
    """
    record = root.attrs.get("checksum")
    if record is None:
        return None
    if not isinstance(record, Mapping) or type(record.get("scheme")) is not int:
        raise ValueError(f"{path}: invalid checksum attribute; re-save the model with romdask.")
    if record["scheme"] != SCHEME:
        raise ValueError(f"{path}: checksum scheme {record['scheme']} is not known to this romdask (it reads "
                         f"scheme {SCHEME}); open the model with the romdask that wrote it.")
    stored, full = record.get("nodes"), record.get("full")
    if not isinstance(stored, Mapping) or not isinstance(full, Mapping) or _sha(_canonical(stored)) != record.get("sha256"):
        raise ValueError(f"{path}: the checksum attribute itself was edited; re-save the model from the offline stage.")
    try:
        nodes, _ = _nodes(root, full)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None
    changed = sorted(k for k in set(nodes) | set(stored) if nodes.get(k) != stored.get(k))
    if changed:
        what = ", ".join(
            _describe(k, "added" if k not in stored else "missing" if k not in nodes else "changed") for k in changed[:5])
        raise ValueError(f"{path}: checksum mismatch in {what}; the model was edited or corrupted. "
                         "Re-save the model from the offline stage.")
    return dict(record)


def verify_full(root: zarr.Group, path: Any, names: Iterable[str]) -> None:
    """Hash the ``full/`` arrays ``names`` against the digests of :func:`verify_model` (nothing for
    a model saved before the checksum).

    Notes
    -----
    Reads each array once, one chunk of rows at a time (memory: one chunk).
    """
    record = verify_model(root, path)
    if record is None:
        return
    for name in names:
        try:
            sha = _read_digest(root[name], name)
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from None
        if sha != record["full"].get(name):
            raise ValueError(f"{path}: checksum mismatch in array {name!r}; the file was corrupted or edited. "
                             "Re-save the model from the offline stage.")


# ---------------------------------------------------------------------- replacing a model on disk
def is_model_dir(path: Path, fmt: str) -> bool:
    """True for a folder whose root ``zarr.json`` is a group with attribute ``format == fmt``."""
    try:
        meta = json.loads((path / "zarr.json").read_text())
    except (OSError, ValueError):
        return False
    return isinstance(meta, dict) and meta.get("node_type") == "group" and \
        isinstance(meta.get("attributes"), dict) and meta["attributes"].get("format") == fmt


def check_replaceable(path: Path, fmt: str) -> None:
    """Refuse to replace ``path`` unless it is missing, an empty folder or a romdask model.

    Raises
    ------
    ValueError
        ``path`` is a file or a folder romdask did not write as a model (names a few entries).
    """
    if not path.exists() and not path.is_symlink():
        return
    if not path.is_dir() or path.is_symlink():
        raise ValueError(f"{path} is not a romdask model (it is a file); overwrite replaces models only: "
                         "choose another path (--out).")
    entries = sorted(p.name for p in path.iterdir())
    if entries and not is_model_dir(path, fmt):
        listed = ", ".join(entries[:5]) + (", ..." if len(entries) > 5 else "")
        why = "a snapshot store" if "runs" in entries and (path / "zarr.json").exists() else f"contains {listed}"
        raise ValueError(f"{path} is not a romdask model ({why}); overwrite replaces models only: "
                         "choose another path (--out).")


def replace_atomically(path: Path, write: Callable[[Path], Any], check: Callable[[Path], Any]) -> Path:
    """``write(tmp)`` into a sibling temporary (:func:`temporary_name`), then rename it to ``path``;
    an existing ``path`` is checked again with ``check(path)`` just before (it may have changed
    during the write), moved aside and deleted once the new one is in place. The temporary is
    removed on any failure: ``path`` is either the old folder or the new one, never half of one."""
    tmp = temporary_name(path)
    try:
        write(tmp)
        if path.exists():
            check(path)
            old = temporary_name(path, "old")
            os.rename(path, old)
            os.rename(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return path


def _updated_checksum(root: zarr.Group, record: Mapping[str, Any] | None, updates: Mapping[str, Any]) -> dict[str, Any]:
    """The checksum record of ``root`` once its root attributes ``updates`` are written: the
    recorded node digests with the updated attributes' replaced (no array is read), or, for a
    model saved before the checksum, the whole :func:`model_checksum` (every array read)."""
    if record is None:
        return model_checksum(root)
    nodes = dict(record["nodes"])
    for key, value in updates.items():
        nodes[f"@{key}"] = _sha(_canonical(value))
    return {"scheme": SCHEME, "nodes": nodes, "full": dict(record["full"]), "sha256": _sha(_canonical(nodes))}


def replace_attributes(path: Path, fmt: str, updates: Mapping[str, Any]) -> Path:
    """Replace root attributes of a saved model (e.g. ``metadata``), its checksum updated, atomically.

    The model is copied byte for byte to a sibling temporary (:func:`temporary_name`), the copy is
    verified (:func:`verify_model`), its attributes and checksum rewritten, verified again, and
    swapped in by :func:`replace_atomically`: an interrupted replacement leaves the old model.

    Parameters
    ----------
    path : a model folder whose root attribute ``format`` is ``fmt``
    fmt : the model format (e.g. :data:`romdask.online.model.FORMAT`)
    updates : root attribute -> new JSON value (plain JSON types: they are hashed as written);
        ``format``, ``version`` and ``checksum`` cannot be replaced

    Returns
    -------
    The path.

    Raises
    ------
    ValueError
        ``path`` is not a model of format ``fmt``, its checksum does not verify, or a protected
        attribute is given.

    Notes
    -----
    Disk: a second copy of the model while it runs (the ``full/`` bases included). Reads the core
    arrays twice for the verifications; the ``full/`` arrays are copied, not read (their recorded
    digests stay valid: their bytes do not change).
    """
    path = Path(path)
    protected = sorted(set(updates) & {"format", "version", "checksum"})
    if protected:
        raise ValueError(f"{path}: the attributes {protected} cannot be replaced; re-save the model instead.")
    if not is_model_dir(path, fmt):
        raise ValueError(f"{path} is not a romdask model (format {fmt!r}); give the folder written by romdask reduce.")
    clean_stale_temporaries(path)

    def write(tmp: Path) -> None:
        shutil.copytree(path, tmp, symlinks=True)
        root = zarr.open_group(tmp, mode="r+", zarr_format=3)
        record = verify_model(root, path)
        values = {key: json.loads(_canonical(value)) for key, value in updates.items()}
        root.attrs.update({**values, "checksum": _updated_checksum(root, record, values)})
        verify_model(zarr.open_group(tmp, mode="r", zarr_format=3), tmp)

    return replace_atomically(path, write, lambda p: check_replaceable(p, fmt))


_TMP = re.compile(r"^(?P<name>.+)\.(?P<kind>tmp|old)-(?P<pid>\d+)(?:@(?P<host>.+)\.[0-9a-f]{8})?$")


def temporary_name(path: Path, kind: str = "tmp") -> Path:
    """A sibling ``<name>.<kind>-<pid>@<host>.<random>``, unique to this save."""
    return path.with_name(f"{path.name}.{kind}-{os.getpid()}@{socket.gethostname()}.{os.urandom(4).hex()}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def clean_stale_temporaries(path: Path) -> list[Path]:
    """Remove the temporaries of killed saves to ``path`` (siblings ``.tmp-<pid>`` / ``.old-<pid>``).

    A temporary is stale when its pid is not alive on this host, or, written on another host,
    when it is older than :data:`FOREIGN_TMP_AGE`; a live owner's are never touched. A stale
    ``.old-`` (the previous model, moved aside by a save killed during the swap) is moved back
    to ``path`` when ``path`` is missing.

    Returns
    -------
    The temporaries removed or restored.
    """
    here = socket.gethostname()
    done = []
    for sibling in sorted(path.parent.glob(f"{glob.escape(path.name)}.*-*")):
        match = _TMP.match(sibling.name)
        if not match or match["name"] != path.name or not sibling.is_dir():
            continue
        if match["host"] in (None, here):
            stale = not _alive(int(match["pid"]))
        else:
            stale = time.time() - sibling.stat().st_mtime > FOREIGN_TMP_AGE
        if not stale:
            continue
        try:
            if match["kind"] == "old" and not path.exists():
                os.rename(sibling, path)
            else:
                shutil.rmtree(sibling)
        except OSError:  # another save cleaned it first
            continue
        done.append(sibling)
    return done
