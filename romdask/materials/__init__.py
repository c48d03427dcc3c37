"""Constitutive laws: numba kernels with explicit state, wrapped by thin frozen dataclasses.

See :mod:`romdask.materials.base` for the kernel interface, :mod:`romdask.materials.registry` for
how laws are named and stored, and ``docs/conventions.md``.
"""

from romdask.materials.base import Material, point_loop, von_mises
from romdask.materials.calculix import CalculixViscoplastic
from romdask.materials.chaboche import Chaboche
from romdask.materials.elastic import LinearElastic
from romdask.materials.registry import LAWS, law_from_json, law_to_json, register_law

__all__ = [
    "LAWS",
    "CalculixViscoplastic",
    "Chaboche",
    "LinearElastic",
    "Material",
    "law_from_json",
    "law_to_json",
    "point_loop",
    "register_law",
    "von_mises",
]
