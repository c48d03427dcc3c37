"""Finite-element kernel matching CalculiX 2.20: mesh, elements, quadrature, partitioning."""

from .elements import ELEMENTS, Element, FaceElement, get_element
from .mesh import ELEMENT_TYPES, CellBlock, Mesh
from .partition import Partition, default_subdomains, partition, partition_cells, renumber
from .quadrature import (
    BlockQuadrature,
    Quadrature,
    internal_force,
    mass_matrix,
    nodal_force_vector,
    pressure_vector,
    quadrature,
    strain,
    strain_matrix,
)

__all__ = [
    "Mesh",
    "CellBlock",
    "ELEMENT_TYPES",
    "Element",
    "FaceElement",
    "ELEMENTS",
    "get_element",
    "BlockQuadrature",
    "Quadrature",
    "quadrature",
    "strain",
    "internal_force",
    "strain_matrix",
    "mass_matrix",
    "pressure_vector",
    "nodal_force_vector",
    "Partition",
    "default_subdomains",
    "partition",
    "partition_cells",
    "renumber",
]
