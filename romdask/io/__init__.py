"""Readers and writers of solver files; the writers of a prediction's full fields (ParaView
series and CalculiX .frd)."""

from __future__ import annotations

from pathlib import Path

from romdask.io.fields import PredictionSeries, write_prediction_frd, write_prediction_vtu
from romdask.io.run import Run
from romdask.io.vtu import write_vtu_series

__all__ = ["PredictionSeries", "READERS", "read_run", "write_prediction_frd", "write_prediction_vtu",
           "write_vtu_series"]

#: file suffix -> (module, reader function); imported only when used
READERS: dict[str, tuple[str, str]] = {
    ".frd": ("romdask.io.calculix", "read_calculix"),
    ".inp": ("romdask.io.calculix", "read_calculix"),
    ".dat": ("romdask.io.calculix", "read_calculix"),
    ".xdmf": ("romdask.io.meshio_series", "read_xdmf_series"),
    ".pvd": ("romdask.io.meshio_series", "read_pvd_series"),
    ".ut": ("romdask.io.zset", "read_zset"),
}


def read_run(path: str | Path, **kw) -> Run:
    """Read a high-fidelity run, choosing the reader by the file suffix.

    Parameters
    ----------
    path : .frd / .inp / .dat (CalculiX: :func:`romdask.io.calculix.read_calculix`),
        .xdmf / .pvd (meshio series: :func:`romdask.io.meshio_series.read_xdmf_series`,
        :func:`~romdask.io.meshio_series.read_pvd_series`), .ut (Z-set:
        :func:`romdask.io.zset.read_zset`)
    **kw : passed to the reader

    Returns
    -------
    Run

    Raises
    ------
    ValueError
        Unknown suffix (the message lists the supported ones).
    """
    import importlib

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in READERS:
        raise ValueError(
            f"{path}: no reader for files ending in {suffix or '(no suffix)'!r}; supported: "
            f"{', '.join(READERS)} (or build a romdask.io.run.Run yourself)"
        )
    module, function = READERS[suffix]
    reader = getattr(importlib.import_module(module), function)
    return reader(path, **kw)
