"""Finite-element kernel matching CalculiX 2.20: mesh, elements, quadrature, partitioning."""

from .elements import ELEMENTS, Element, FaceElement, get_element
from .extrapolate import extrapolation_matrix, ip_to_elements, ip_to_nodes, node_element_counts
from .mesh import ELEMENT_TYPES, CellBlock, Mesh
from .partition import Partition, default_subdomains, partition, partition_cells, renumber
from .quadrature import (
    BlockQuadrature,
    Quadrature,
    body_force_vector,
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
    "extrapolation_matrix",
    "ip_to_elements",
    "ip_to_nodes",
    "node_element_counts",
    "BlockQuadrature",
    "Quadrature",
    "quadrature",
    "strain",
    "internal_force",
    "strain_matrix",
    "mass_matrix",
    "pressure_vector",
    "nodal_force_vector",
    "body_force_vector",
    "Partition",
    "default_subdomains",
    "partition",
    "partition_cells",
    "renumber",
]
