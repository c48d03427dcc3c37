"""The online stage: the reduced model artifact (and, later, the reduced solver)."""

from romdask.online.model import FORMAT, LAWS, VERSION, ReducedModel, open_full_modes

__all__ = ["FORMAT", "LAWS", "VERSION", "ReducedModel", "open_full_modes"]
