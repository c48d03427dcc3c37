"""The online artifact loads without Dask, xarray or METIS (design: a laptop runs the reduced
model in-process with numpy, numba and zarr)."""

import subprocess
import sys

HEAVY = ("dask", "distributed", "xarray", "pymetis", "dask_jobqueue")


def test_importing_online_loads_no_dask_xarray_or_metis():
    code = (
        "import sys, romdask.online\n"
        "from romdask.online import ReducedModel, Scenario, OnlineOptions, solve\n"
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"romdask.online imported {out.stdout.strip()}"


def test_reconstruction_names_are_still_reachable():
    from romdask import online

    assert callable(online.open_full) and callable(online.replay_law)
