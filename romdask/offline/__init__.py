"""Offline stage: snapshot POD, subdomain halos, nonintrusive law replay, ECM hyper-reduction,
Q-DEIM, Gappy-POD, and the reduce pipeline chaining them (romdask.offline)."""

from .ecm import ECMResult, ecm, ecm_subdomains, ecm_subdomains_graph, integrand_matrix
from .gappy import GappyPOD, gappy_pod, point_rows, qdeim, qdeim_points
from .halo import SubdomainHalo, local_snapshots, subdomain_halos, submesh
from .pod import POD, ProductOperator, combine, gram, inner, mass_product, pod, pod_update
from .reduce import reduce
from .replay import replay, strains

__all__ = [
    "ECMResult",
    "GappyPOD",
    "POD",
    "ProductOperator",
    "SubdomainHalo",
    "combine",
    "ecm",
    "ecm_subdomains",
    "ecm_subdomains_graph",
    "gappy_pod",
    "gram",
    "inner",
    "integrand_matrix",
    "local_snapshots",
    "mass_product",
    "point_rows",
    "pod",
    "pod_update",
    "qdeim",
    "qdeim_points",
    "reduce",
    "replay",
    "strains",
    "subdomain_halos",
    "submesh",
]
