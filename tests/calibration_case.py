"""A small plate (n=4) store and model for the calibration tests: the model is trained on the
0.004 and 0.008 mm runs (built-in solver), the other runs are held out (other amplitudes and load
ratios) to calibrate it or to check its predicted errors."""

from __future__ import annotations

from pathlib import Path

from romdask.hifi import solve
from romdask.offline import ReduceOptions, reduce
from romdask.problem.patterns import describe_loads
from romdask.problems.plate import plate_problem
from romdask.store import create_store

FIELDS = ("displacement", "stress", "state")
INCREMENTS = 16
TRAIN = {"train_a": (0.004, -1.0), "train_b": (0.008, -1.0)}
#: calibration runs: name -> (amplitude, r_ratio)
CALIBRATION = {"c_005": (0.005, -1.0), "c_007": (0.007, -1.0), "c_009": (0.009, -1.0), "c_006_r0": (0.006, 0.0),
               "c_011_r0": (0.011, 0.0)}
#: held out of the calibration too
HELD_OUT = {"h_0075": (0.0075, -1.0)}


def problem(amplitude: float, r_ratio: float):
    return plate_problem(amplitude=amplitude, n=4, n_cycles=1, increments_per_cycle=INCREMENTS, r_ratio=r_ratio)


class CalibrationCase:
    """``store`` (every run), ``model`` (saved with its full bases and mesh), ``problems``."""

    def __init__(self, folder: Path) -> None:
        runs = {**TRAIN, **CALIBRATION, **HELD_OUT}
        self.problems = {name: problem(*spec) for name, spec in runs.items()}
        first = self.problems["train_a"]
        self.law = first.material
        store = create_store(folder / "s.zarr", first.mesh, n_subdomains=2)
        for name, pb in self.problems.items():
            writer = store.writer(name, mesh=pb.mesh, times=pb.times, fields=FIELDS,
                                  metadata={"loads": describe_loads(pb)}, allow_nan=("state",))
            solve(pb, writer=writer, fields=FIELDS)
        self.store = store.path
        reduction = reduce(store.path, self.law, runs=sorted(TRAIN),
                           options=ReduceOptions(tol_pod=1e-6, tol_ecm=1e-5))
        self.model = reduction.save(folder / "m.zarr")
        self.calibration = sorted(CALIBRATION)
        self.held_out = sorted(HELD_OUT)


#: 4 held-out runs that calibrate von Mises but not the displacement: per run, the final and first
#: log10 indicator, then per measure the final and first log10 error (the indicator ranks the
#: von Mises errors; the displacement errors are 1-4 % whatever the indicator)
SPREAD_RUNS = {
    "r0": (-3.4, -4.4, {"von_mises": (-3.0, -4.5), "displacement": (-1.3, -4.0)}),
    "r1": (-2.6, -4.9, {"von_mises": (-2.4, -4.3), "displacement": (-1.4, -5.5)}),
    "r2": (-1.8, -2.9, {"von_mises": (-1.75, -3.0), "displacement": (-1.9, -3.5)}),
    "r3": (-1.5, -2.7, {"von_mises": (-1.5, -2.7), "displacement": (-1.6, -4.0)}),
}


def spread_pairs(n_t: int = 40, swap: bool = False) -> dict:
    """:data:`SPREAD_RUNS` as :func:`romdask.offline.calibration_pairs` gives them: ``n_t`` output
    times, the indicator reaching its last decade in ~5 steps and the errors in ~10 (running maxima
    of a user's CalculiX runs look so). ``swap``: the measures' roles exchanged (von Mises spread)."""
    import numpy as np

    steps = np.arange(n_t)
    out = {}
    for name, (x_final, x_first, measures) in SPREAD_RUNS.items():
        errors = {}
        for measure, (y_final, y_first) in measures.items():
            if swap:
                measure = {"von_mises": "displacement", "displacement": "von_mises"}[measure]
            errors[measure] = 10.0 ** (y_final - (y_final - y_first) * np.exp(-steps / 10.0))
        indicator = 10.0 ** (x_final - (x_final - x_first) * np.exp(-steps / 5.0))
        out[name] = {"times": steps.astype(np.float64), "indicator": indicator, "quantity": "stress",
                     "errors": errors, "training": False}
    return out
