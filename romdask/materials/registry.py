"""The law registry: law name <-> class <-> JSON, the only classes a stored run or reduced model
may name (no pickle, no import by name).

A law class enters with :func:`register_law` (romdask's laws do at import). Its JSON form is
``{"type": <class name>, "parameters": {<constructor arguments>}}``, written by
:func:`law_to_json` and rebuilt by :func:`law_from_json` from registered classes only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields, is_dataclass
from typing import Any, TypeVar

from romdask.materials.base import Material
from romdask.serialize import plain

__all__ = ["LAWS", "law_from_json", "law_to_json", "register_law"]

#: name -> class of every registered law
LAWS: dict[str, type[Material]] = {}

L = TypeVar("L", bound=type[Material])


def register_law(cls: L) -> L:
    """Class decorator: make a frozen-dataclass law storable (by its class name).

    Raises
    ------
    TypeError
        Not a :class:`Material` dataclass, or another class already holds the name.
    """
    if not (isinstance(cls, type) and issubclass(cls, Material) and is_dataclass(cls)):
        raise TypeError(f"register_law needs a Material dataclass; got {cls!r}")
    name = cls.__name__
    if LAWS.get(name, cls) is not cls:
        raise TypeError(f"law name {name!r} is taken by {LAWS[name].__module__}.{name}")
    LAWS[name] = cls
    return cls


def law_to_json(law: Material) -> dict[str, Any]:
    """``{"type": class name, "parameters": constructor arguments}`` of a registered law."""
    name = type(law).__name__
    if LAWS.get(name) is not type(law):
        raise ValueError(
            f"law type {type(law).__module__}.{type(law).__qualname__} is not registered; use one of "
            f"{sorted(LAWS)} (or decorate the class with romdask.materials.register_law)."
        )
    params = {f.name: getattr(law, f.name) for f in fields(law) if f.init}
    return {"type": name, "parameters": plain(params, f"{name} parameters")}


def law_from_json(entry: Any) -> Material:
    """The law described by ``entry`` (see :func:`law_to_json`); only registered classes."""
    if not isinstance(entry, Mapping) or not isinstance(entry.get("parameters"), Mapping):
        raise ValueError(f"a law entry must be {{'type': ..., 'parameters': {{...}}}}; got {entry!r}.")
    name = entry.get("type")
    cls = LAWS.get(name) if isinstance(name, str) else None
    if cls is None:
        raise ValueError(
            f"unknown law type {name!r}; this romdask knows only {sorted(LAWS)} (no other class is "
            "ever imported)."
        )
    allowed = {f.name for f in fields(cls) if f.init}
    extra = sorted(set(entry["parameters"]) - allowed)
    if extra:
        raise ValueError(f"law {name} has unknown parameters {extra}; allowed: {sorted(allowed)}.")
    try:
        return cls(**entry["parameters"])
    except (TypeError, ValueError) as exc:
        raise ValueError(f"law {name} cannot be built from the parameters {dict(entry['parameters'])}: {exc}") from None
