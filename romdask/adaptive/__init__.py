"""Adaptive reduced models: enrichment with high-fidelity increments where the error indicator
flags the reduced result (Casenave & Akkari 2019), and greedy training over a parameter box."""

from .enrichment import Enrichable, enrich, enrichable
from .greedy import GreedyResult, greedy_train, run_name
from .loop import AdaptiveOptions, AdaptiveResult, adaptive_solve

__all__ = ["AdaptiveOptions", "AdaptiveResult", "Enrichable", "GreedyResult", "adaptive_solve", "enrich", "enrichable",
           "greedy_train", "run_name"]
