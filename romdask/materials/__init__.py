"""Constitutive laws: numba kernels with explicit state, wrapped by thin frozen dataclasses.

See :mod:`romdask.materials.base` for the kernel interface and ``docs/conventions.md``.
"""

from romdask.materials.base import Material, von_mises
from romdask.materials.calculix import CalculixViscoplastic
from romdask.materials.chaboche import Chaboche
from romdask.materials.elastic import LinearElastic

__all__ = ["Material", "LinearElastic", "CalculixViscoplastic", "Chaboche", "von_mises"]
