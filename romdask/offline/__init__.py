"""Offline stage: snapshot POD, subdomain halos, nonintrusive law replay, ECM hyper-reduction,
Q-DEIM, Gappy-POD, the reduce pipeline composing them as named stages, and the calibration of the
error indicator (romdask.offline)."""

from .calibration import calibrate, calibration_pairs, conformal_factor, fit_calibration, fit_error_model
from .calibration import write_calibration
from .ecm import ECMResult, ecm, ecm_subdomains, ecm_subdomains_graph, integrand_matrix
from .gappy import GappyPOD, gappy_pod, point_rows, qdeim, qdeim_points
from .halo import SubdomainHalo, local_snapshots, subdomain_halos, submesh
from .local import (Clustering, Dissimilarity, LocalReduction, choose_clusters, cluster_criterion, dissimilarity,
                    kmedoids, reduce_local)
from .hyperreduction import Hyperreduction, full_quadrature, hyperreduce
from .pod import POD, ProductOperator, combine, gram, inner, mass_product, pod, pod_update
from .reduce import ReduceOptions, Reduction, reduce
from .replay import replay, strains
from .stages import DualBases, Gathered, PointFields, assemble, dual_bases, full_bases, gather, point_fields
from .stages import thermal_rows
from .temperature import RunTemperature, run_temperatures
from .training import Lifting, TrainingData, lift, training_data, training_law

__all__ = [
    "Clustering",
    "Dissimilarity",
    "LocalReduction",
    "choose_clusters",
    "cluster_criterion",
    "dissimilarity",
    "kmedoids",
    "reduce_local",
    "DualBases",
    "ECMResult",
    "GappyPOD",
    "Gathered",
    "Hyperreduction",
    "Lifting",
    "POD",
    "PointFields",
    "ProductOperator",
    "ReduceOptions",
    "Reduction",
    "RunTemperature",
    "SubdomainHalo",
    "TrainingData",
    "assemble",
    "calibrate",
    "calibration_pairs",
    "combine",
    "conformal_factor",
    "dual_bases",
    "ecm",
    "ecm_subdomains",
    "ecm_subdomains_graph",
    "fit_calibration",
    "fit_error_model",
    "full_bases",
    "full_quadrature",
    "gappy_pod",
    "gather",
    "gram",
    "hyperreduce",
    "inner",
    "integrand_matrix",
    "lift",
    "local_snapshots",
    "mass_product",
    "point_fields",
    "point_rows",
    "pod",
    "pod_update",
    "qdeim",
    "qdeim_points",
    "reduce",
    "replay",
    "run_temperatures",
    "strains",
    "subdomain_halos",
    "submesh",
    "thermal_rows",
    "training_data",
    "training_law",
    "write_calibration",
]
