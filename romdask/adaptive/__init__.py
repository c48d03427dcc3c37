"""Adaptive reduced models: enrichment with high-fidelity increments where the error indicator
flags the reduced result (Casenave & Akkari 2019)."""

from .enrichment import Enrichable, enrich, enrichable
from .loop import AdaptiveOptions, AdaptiveResult, adaptive_solve

__all__ = ["AdaptiveOptions", "AdaptiveResult", "Enrichable", "adaptive_solve", "enrich", "enrichable"]
