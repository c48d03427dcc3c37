"""Helpers shared by the whole test suite."""

from __future__ import annotations

import dask
import pytest


def _scheduler_that_raises(*args, **kwargs):
    raise RuntimeError("a graph-building function computed something")


@pytest.fixture
def raise_on_compute():
    """``with raise_on_compute(): ...``: any dask computation inside raises (xarray's
    ``raise_if_dask_computes`` pattern: lazy functions must only build graphs)."""
    return lambda: dask.config.set(scheduler=_scheduler_that_raises)


@pytest.fixture(scope="session")
def calibration_case(tmp_path_factory):
    """The plate store and model of tests/calibration_case.py (built once, ~12 s)."""
    from calibration_case import CalibrationCase

    return CalibrationCase(tmp_path_factory.mktemp("calibration"))
