"""The whole romdask pipeline on the built-in solver (``romdask demo``).

Stages, as a user runs them on a laptop:

1. high fidelity: the quarter plate with a hole under a cyclic prescribed displacement, one cycle
   at each training amplitude, written into a snapshot store;
2. offline: :func:`romdask.offline.reduce` on a LocalCluster, the model saved with its full bases;
3. online: the reduced Newton solver predicts an unseen amplitude over more cycles; the built-in
   solver computes the same case as a reference (also written into the store, not trained on).

:func:`run_demo` returns the figures of the summary table and writes plots and VTU fields.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from dask.system import CPU_COUNT

from romdask.fem.quadrature import quadrature
from romdask.hifi import solve
from romdask.materials import von_mises
from romdask.problem.patterns import run_metadata
from romdask.problems.plate import plate_n_for_nodes, plate_problem
from romdask.store import SnapshotStore, create_store, open_snapshots

__all__ = ["DemoSettings", "compare", "run_demo", "summary_table"]

FIELDS = ("displacement", "stress", "state")
log = logging.getLogger("romdask.demo")


@dataclass(frozen=True)
class DemoSettings:
    """What the demo trains on and predicts.

    Attributes
    ----------
    nodes : approximate node count of the plate mesh
    train : prescribed top displacements (mm) of the training runs, one cycle each
    predict : the unseen amplitude (mm) predicted by the reduced model
    cycles : cycles of the prediction (more than the training's one: cyclic extrapolation)
    train_cycles : cycles of each training run
    tol_pod, tol_ecm : offline tolerances (:func:`romdask.offline.reduce`)
    workers : LocalCluster workers (None: one per core)
    subdomains : store subdomains (None: 2 per worker)
    """

    nodes: int = 4000
    train: tuple[float, ...] = (0.004, 0.008)
    predict: float = 0.006
    cycles: float = 3.0
    train_cycles: float = 1.0
    tol_pod: float = 1e-6
    tol_ecm: float = 1e-6
    workers: int | None = None
    subdomains: int | None = None


def _problem(settings: DemoSettings, amplitude: float, cycles: float):
    return plate_problem(amplitude=amplitude, n_cycles=cycles, n=plate_n_for_nodes(settings.nodes))


def _hf_run(store: SnapshotStore, name: str, problem, progress: Callable | None):
    """Built-in solver run written into the store with the metadata ``reduce`` needs."""
    writer = store.writer(name, mesh=problem.mesh, times=problem.times, fields=FIELDS, solver="romdask",
                          metadata=run_metadata(problem), overwrite=True, allow_nan=("state",))
    return solve(problem, writer=writer, fields=FIELDS, progress=progress)



def pipeline(store: SnapshotStore, runs: dict, target, out: Path, settings, progress: Callable):
    """Steps 1-3 of a demo: the training runs and the reference by the built-in solver, the
    reduction on a LocalCluster, the online prediction of ``target``.

    Parameters
    ----------
    store : the demo's snapshot store
    runs : training run name -> Problem
    target : the Problem to predict (its HF solution is written as run "reference")
    out : where ``model.zarr`` goes
    settings : has ``tol_pod``, ``tol_ecm``, ``workers`` (None: one per core)
    progress : ``label -> callback`` for the built-in solver

    Returns
    -------
    figures (sizes, times, speedup), model path, ReducedModel, OnlineResult, HF reference Result

    Notes
    -----
    The online time excludes numba compilation (one warm-up solve of the first increment).
    """
    from romdask.cluster import cluster_client, progress_bar
    from romdask.offline import ReduceOptions, reduce
    from romdask.online import ReducedModel, Scenario

    mesh = target.mesh
    figures: dict = {"nodes": mesh.n_nodes, "dofs": mesh.n_dofs}
    figures["hf_training_time"] = sum(_hf_run(store, name, problem, progress(f"HF {name}")).wall_time
                                      for name, problem in runs.items())
    start = time.perf_counter()
    with cluster_client("local", n_workers=settings.workers or CPU_COUNT) as client, progress_bar(client):
        reduction = reduce(store.path, next(iter(runs.values())).material, runs=list(runs),
                           options=ReduceOptions(tol_pod=settings.tol_pod, tol_ecm=settings.tol_ecm))
    model_path = reduction.save(out / "model.zarr", overwrite=True)
    figures["offline_time"] = time.perf_counter() - start
    model = ReducedModel.open(model_path)
    report = model.metadata["reduce"]
    figures.update(n_modes=model.n_modes, n_points=model.n_points, n_points_full=report["n_points_full"],
                   ecm_residual=report["ecm_residual"])
    scenario = Scenario.from_problem(target)
    model.solve(Scenario(scenario.times[:2], scenario.coefficients, scenario.homogeneous, scenario.temperature))
    rom = model.solve(scenario)
    figures["online_time"] = rom.wall_time
    reference = _hf_run(store, "reference", target, progress("HF reference"))
    figures["hf_time"] = reference.wall_time
    figures["speedup"] = reference.wall_time / rom.wall_time
    return figures, model_path, model, rom, reference


def run_demo(
    out: str | Path,
    settings: DemoSettings = DemoSettings(),
    *,
    progress: Callable[[str], Callable | None] = lambda label: None,
    plots: bool = True,
    vtu: bool = True,
) -> dict:
    """Train, reduce, predict and compare; write plots and VTU fields into ``out``.

    Parameters
    ----------
    out : output folder (created): ``store.zarr``, ``model.zarr``, ``*.png``, ``rom.pvd``,
        ``summary.json`` (the figures)
    settings : DemoSettings
    progress : ``label -> callback`` for the built-in solver's progress (see
        :func:`romdask.hifi.solve`), or None
    plots, vtu : write the figures / the VTU series

    Returns
    -------
    dict of the summary figures (times in s, relative errors, speedup, sizes) plus
    ``"files"``: the paths written.

    Notes
    -----
    Errors compare the reduced prediction with the built-in solver on the same scenario, both in
    the store's node and integration-point order: displacement in the time-space L2 norm
    ``||U_rom - U_hf||_F / ||U_hf||_F``; von Mises stress and cumulated plastic strain as the
    largest pointwise difference over all times and points relative to the largest HF value,
    with the ROM fields at every point from the law replayed along the reduced strain history
    (:func:`romdask.online.replay_law`, ``error_von_mises``, ``error_p``) and from Gappy-POD
    (``*_gappy``). The online time excludes numba compilation (one warm-up solve of the first
    increment).
    """
    from romdask.online import open_full

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    target = _problem(settings, settings.predict, settings.cycles)
    store_path = out / "store.zarr"
    workers = settings.workers or CPU_COUNT  # dask's count: affinity and cgroup limits
    store = create_store(store_path, target.mesh, n_subdomains=settings.subdomains or 2 * workers, overwrite=True)
    runs = {f"train-{a:g}": _problem(settings, a, settings.train_cycles) for a in settings.train}
    # 1.-3. training runs, reduction, prediction and its HF reference
    figures, model_path, model, rom, reference = pipeline(store, runs, target, out, settings, progress)
    figures["files"] = []

    # 4. errors on the whole mesh: stress and p by Gappy-POD and by replaying the law
    errors, fields = compare(open_full(model_path), rom, open_snapshots(store_path, runs=["reference"]),
                             target.material)
    figures.update(errors, max_indicator=float(np.max(rom.indicator)), flagged_steps=int(np.count_nonzero(rom.flagged)))
    u_rom, u_hf = fields["u_rom"], fields["u_hf"]
    step_error = np.linalg.norm(u_rom - u_hf, axis=1) / np.linalg.norm(u_hf, axis=1).max()
    layout = store.layout
    if plots:
        figures["files"] += _plots(out, model, layout, rom, reference, target, step_error)
    if vtu:
        figures["files"].append(_vtu(out, layout, rom.times, fields))
    summary = out / "summary.json"
    summary.write_text(json.dumps({k: v for k, v in figures.items() if k != "files"}, indent=1))
    figures["files"].append(summary)
    return figures


def compare(full, result, reference, law) -> tuple[dict, dict]:
    """Errors of a reduced prediction against a high-fidelity run of the same scenario.

    Parameters
    ----------
    full : :func:`romdask.online.open_full` of the model that produced ``result``
    result : the OnlineResult
    reference : :func:`romdask.store.open_snapshots` of the HF run (displacement, stress, state),
        the store of the model's training runs (same node and integration-point order)
    law : the constitutive law (for the law replay, :func:`romdask.online.prediction_fields`)

    Returns
    -------
    errors : ``error_displacement``, ``error_von_mises`` and ``error_p``
        (:func:`romdask.online.compare.field_errors`: time-space L2; largest pointwise difference
        relative to the largest HF value), the ROM's stress and p from the law replayed along the
        reduced strains; the same from Gappy-POD (``*_gappy``); ``replay_time`` (s),
        ``max_von_mises`` and ``max_p`` of the HF run
    fields : ``u_rom, u_hf`` (n_t, n_dofs), ``vm_rom, vm_hf, p_rom, p_hf`` (n_t, n_points)
    """
    from romdask.online import prediction_fields
    from romdask.online.compare import field_errors

    start = time.perf_counter()
    replayed = prediction_fields(full, result, law, dual="replay")
    replay_time = time.perf_counter() - start
    gappy = prediction_fields(full, result, dual="gappy")
    hf = {"displacement": reference.displacement.values, "von_mises": von_mises(reference.stress.values),
          "p": reference.state.values[..., 0]}
    rom = {"displacement": np.asarray(replayed["displacement"]), "von_mises": von_mises(replayed["stress"]),
           "p": replayed["p"]}
    by_replay = field_errors(rom, hf)
    by_gappy = field_errors({"von_mises": von_mises(np.asarray(gappy["stress"])), "p": np.asarray(gappy["p"])}, hf)
    errors = {
        "error_displacement": by_replay["displacement"], "error_von_mises": by_replay["von_mises"],
        "error_p": by_replay["p"], "error_von_mises_gappy": by_gappy["von_mises"], "error_p_gappy": by_gappy["p"],
        "replay_time": replay_time, "max_von_mises": by_replay["max_von_mises"], "max_p": by_replay["max_p"],
    }
    fields = {"u_rom": rom["displacement"], "u_hf": hf["displacement"], "vm_rom": rom["von_mises"],
              "vm_hf": hf["von_mises"], "p_rom": rom["p"], "p_hf": hf["p"]}
    return errors, fields


def _cell_mean(layout, field: np.ndarray) -> np.ndarray:
    """(n_t, n_points, ...) in store ip-position order -> (n_t, n_elements, ...) element means."""
    elements = layout.ip_element[layout.ip_points]  # ip_element is per global point, fields per position
    counts = np.bincount(elements, minlength=layout.mesh.n_elements)
    out = np.zeros((field.shape[0], layout.mesh.n_elements) + field.shape[2:])
    np.add.at(out, (slice(None), elements), field)
    return out / counts.reshape((1, -1) + (1,) * (field.ndim - 2))


def _vtu(out: Path, layout, times, fields: dict, extra_point: dict | None = None) -> Path:
    from romdask.io.vtu import write_vtu_series

    n_t, n_nodes = len(times), layout.mesh.n_nodes
    point = {f"displacement_{w}": fields[f"u_{w}"].reshape(n_t, n_nodes, 3) for w in ("rom", "hf")}
    point.update(extra_point or {})
    point["displacement_error"] = point["displacement_rom"] - point["displacement_hf"]
    cell = {f"{q}_{w}": _cell_mean(layout, fields[f"{short}_{w}"])
            for q, short in (("von_mises", "vm"), ("p", "p")) for w in ("rom", "hf")}
    return write_vtu_series(out / "rom", layout.mesh, times, point, cell)


class _Figures:
    """Saves matplotlib figures (Agg) into ``out`` and remembers the paths."""

    def __init__(self, out: Path):
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        self.plt, self.out, self.paths = plt, out, []

    def save(self, fig, name: str) -> None:
        if fig.get_layout_engine() is None:
            fig.tight_layout()
        self.paths.append(self.out / name)
        fig.savefig(self.paths[-1], dpi=120)
        self.plt.close(fig)


def _reduction_plots(figures: _Figures, model, layout, rom, step_error, xy: tuple[int, int] = (0, 1)) -> None:
    """singular_values.png, reduced_points.png (projected on the ``xy`` coordinates) and
    error_indicator.png: the plots every demo shares."""
    plt = figures.plt
    report = model.metadata["reduce"]
    fig, ax = plt.subplots(figsize=(5, 3.5))
    s = np.asarray(report["singular_values"])
    ax.semilogy(np.arange(1, s.size + 1), s / s[0], "o-", ms=3, label="displacement (POD)")
    for name, values in report.get("gappy_singular_values", {}).items():
        v = np.asarray(values)
        ax.semilogy(np.arange(1, v.size + 1), v / v[0], ".-", ms=3, label=f"{name} (Gappy)")
    ax.axhline(report["tol_pod"], color="grey", lw=0.8, ls="--", label="POD tolerance")
    ax.set(xlabel="index", ylabel="s_i / s_0", title="Singular values")
    ax.legend(fontsize=8)
    figures.save(fig, "singular_values.png")

    quad = quadrature(layout.mesh)
    xyz = quad.coordinates[model.point_ids]
    nodes = layout.mesh.nodes
    a, b = xy
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot(nodes[:, a], nodes[:, b], ",", color="0.75")
    ecm = model.weights > 0
    ax.scatter(xyz[ecm, a], xyz[ecm, b], s=12, c="C3", label=f"ECM points ({ecm.sum()})")
    ax.scatter(xyz[~ecm, a], xyz[~ecm, b], s=12, marker="x", c="C0", label=f"Q-DEIM points ({(~ecm).sum()})")
    names = "xyz"
    ax.set(aspect="equal", xlabel=f"{names[a]} [mm]", ylabel=f"{names[b]} [mm]",
           title="Reduced integration points (projected)")
    ax.legend(fontsize=8, loc="upper right")
    figures.save(fig, "reduced_points.png")

    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.semilogy(rom.times, np.maximum(step_error, 1e-16), label="displacement error (HF)")
    ax.semilogy(rom.times, np.maximum(rom.indicator, 1e-16), label="error indicator (Gappy p)")
    ax.set(xlabel="time [s]", ylabel="relative", title="ROM error and indicator")
    ax.legend(fontsize=8)
    figures.save(fig, "error_indicator.png")


def _plots(out: Path, model, layout, rom, reference, target, step_error) -> list[Path]:
    figures = _Figures(out)
    _reduction_plots(figures, model, layout, rom, step_error)
    pattern = target.metadata["load_pattern"]
    top = reference.reaction_names.index(pattern)
    lifted = list(model.lifting["lifting_names"]).index(pattern)
    fig, ax = figures.plt.subplots(figsize=(5, 4))
    ax.plot(rom.lifting_coefficients[:, lifted], reference.reactions[:, top, 1], "k-", lw=1.5, label="HF (built-in)")
    ax.plot(rom.lifting_coefficients[:, lifted], rom.reactions[:, lifted], "C3--", lw=1.2, label="ROM")
    ax.set(xlabel="prescribed displacement [mm]", ylabel="reaction force [N]", title="Force-displacement")
    ax.legend(fontsize=8)
    figures.save(fig, "force_displacement.png")
    return figures.paths


def summary_table(figures: dict, settings: DemoSettings) -> list[tuple[str, str]]:
    """The demo's printed table as (label, value) rows."""
    f = figures
    return [
        ("mesh", f"{f['nodes']:,} nodes / {f['dofs']:,} dofs"),
        ("training", f"{len(settings.train)} HF runs, amplitudes {', '.join(f'{a:g}' for a in settings.train)} mm, "
                     f"{settings.train_cycles:g} cycle(s): {f['hf_training_time']:.1f} s"),
        ("reduced model", f"{f['n_modes']} modes, {f['n_points']} of {f['n_points_full']:,} integration points"),
        ("offline time (reduce)", f"{f['offline_time']:.1f} s"),
        ("prediction", f"amplitude {settings.predict:g} mm, {settings.cycles:g} cycles"),
        ("HF time", f"{f['hf_time']:.2f} s"),
        ("online time", f"{f['online_time']:.3f} s"),
        ("speedup", f"{f['speedup']:.0f}x"),
        ("error displacement (L2 time-space)", f"{f['error_displacement']:.2e}"),
        ("error von Mises (max, of max)", f"{100 * f['error_von_mises']:.2f} % law replay "
                                          f"({f['replay_time']:.1f} s), {100 * f['error_von_mises_gappy']:.2f} % Gappy-POD"),
        ("error plastic strain (max, of max)", f"{100 * f['error_p']:.2f} % law replay, "
                                               f"{100 * f['error_p_gappy']:.2f} % Gappy-POD (max p {f['max_p']:.2e})"),
        ("max error indicator", f"{f['max_indicator']:.2e} ({f['flagged_steps']} flagged steps)"),
    ]
