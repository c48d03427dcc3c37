"""Readers and writers of solver files."""

from romdask.io.vtu import write_vtu_series

__all__ = ["write_vtu_series"]
