"""Offline stage: snapshot POD, subdomain halos, nonintrusive law replay (romdask.offline)."""

from .halo import SubdomainHalo, local_snapshots, subdomain_halos, submesh
from .pod import POD, ProductOperator, combine, gram, inner, mass_product, pod, pod_update
from .replay import replay, strains

__all__ = [
    "POD",
    "ProductOperator",
    "SubdomainHalo",
    "combine",
    "gram",
    "inner",
    "local_snapshots",
    "mass_product",
    "pod",
    "pod_update",
    "replay",
    "strains",
    "subdomain_halos",
    "submesh",
]
