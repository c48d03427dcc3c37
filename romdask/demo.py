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

from romdask.demo_plots import (
    error_history_figure,
    force_displacement_figure,
    hysteresis,
    hysteresis_figure,
    loop_areas,
    reduced_points_figure,
    singular_values_figure,
    step_errors,
)
from romdask.fem.quadrature import quadrature
from romdask.hifi import solve
from romdask.materials import von_mises
from romdask.problem.patterns import run_metadata
from romdask.problems.plate import plate_n_for_nodes, plate_problem
from romdask.store import SnapshotStore, create_store, open_snapshots

__all__ = [
    "DemoSettings", "compare", "demo_figures", "error_history_figure", "estimate_output", "force_displacement_figure",
    "hysteresis", "hysteresis_figure", "output_sizes", "planned_output", "reduced_points_figure", "reduction_figures",
    "result_rows", "run_demo", "singular_values_figure", "step_errors", "summary_table", "write_summary",
]

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
    out : output folder (created): ``store.zarr``, ``model.zarr``, the figures
        (:func:`demo_figures`: ``singular_values.png``, ``reduced_points.png``,
        ``error_indicator.png``, ``hysteresis.png``, ``force_displacement.png``), the arrays they
        plot ``plot_data.npz`` (the ``data`` of :func:`demo_figures`), ``rom.pvd`` and its
        ``rom_*.vtu``, ``summary.json`` (:func:`write_summary`)
    settings : DemoSettings
    progress : ``label -> callback`` for the built-in solver's progress (see
        :func:`romdask.hifi.solve`), or None
    plots, vtu : write the figures (and plot_data.npz) / the VTU series

    Returns
    -------
    dict of the summary figures (times in s, relative errors, speedup, sizes), ``indicator_threshold``,
    ``hysteresis`` (with plots: the loops at the most loaded point, see :func:`demo_figures`),
    ``output_bytes`` (output name -> bytes written) and ``"files"``: the paths written.

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
    from romdask.online import OnlineOptions, open_full

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
    figures["indicator_threshold"] = OnlineOptions().indicator_threshold
    layout = store.layout
    if plots:
        plotted, data = demo_figures(model, layout, rom, reference, target, fields)
        figures["files"] += _save(out, plotted)
        np.savez(out / "plot_data.npz", **{k: np.asarray(v) for k, v in data.items()})
        figures["files"].append(out / "plot_data.npz")
        figures["hysteresis"] = _hysteresis_summary(data)
    if vtu:
        figures["files"].append(_vtu(out, layout, rom.times, fields))
    figures["output_bytes"] = output_sizes(out, [store_path, model_path, *figures["files"]])
    figures["files"] = [store_path, model_path, *figures["files"]]
    figures["files"].append(write_summary(out, figures))
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
    fields : ``u_rom, u_hf`` (n_t, n_dofs), ``vm_rom, vm_hf, p_rom, p_hf`` (n_t, n_points),
        ``s_rom, s_hf`` (n_t, n_points, 6) the stresses (ROM: law replay)
    """
    from romdask.online import prediction_fields
    from romdask.online.compare import field_errors

    start = time.perf_counter()
    replayed = prediction_fields(full, result, law, dual="replay")
    replay_time = time.perf_counter() - start
    gappy = prediction_fields(full, result, dual="gappy")
    hf_stress = reference.stress.values
    hf = {"displacement": reference.displacement.values, "von_mises": von_mises(hf_stress),
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
              "vm_hf": hf["von_mises"], "p_rom": rom["p"], "p_hf": hf["p"], "s_rom": np.asarray(replayed["stress"]),
              "s_hf": hf_stress}
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


def reduction_figures(model, layout, rom, fields: dict, xy: tuple[int, int] = (0, 1)) -> dict:
    """The figures every demo shares: ``singular_values``, ``reduced_points`` (projected on the
    ``xy`` coordinates) and ``error_indicator`` (the errors over time, one axis per quantity, and
    the indicator with its threshold); ``fields`` from :func:`compare`."""
    from romdask.online import OnlineOptions

    report = model.metadata["reduce"]
    quad = quadrature(layout.mesh)
    return {
        "singular_values": singular_values_figure(report["singular_values"], model.n_modes, report["tol_pod"],
                                                  report.get("gappy_singular_values")),
        "reduced_points": reduced_points_figure(layout.mesh, quad.coordinates[model.point_ids], model.weights, xy),
        "error_indicator": error_history_figure(rom.times, step_errors(fields), rom.indicator,
                                                OnlineOptions().indicator_threshold),
    }


def demo_figures(model, layout, rom, reference, target, fields: dict) -> tuple[dict, dict]:
    """The plate demo's figures (:func:`reduction_figures` plus ``hysteresis`` and
    ``force_displacement``) and the plotted hysteresis data.

    Returns
    -------
    figures : name -> matplotlib Figure
    data : what they plot: :func:`romdask.demo_plots.hysteresis` at the most loaded point, plus
        ``displacement`` (prescribed, mm), ``force_hf``, ``force_rom`` (N),
        ``reaction_loop_area_hf``, ``_rom`` (mJ per full cycle, the modelled quarter), the
        errors over time ``error_displacement``, ``error_von_mises``, ``error_p``
        (:func:`romdask.demo_plots.step_errors`), ``indicator`` and ``indicator_threshold``
    """
    from romdask.online import OnlineOptions

    period = float(target.metadata["period"])
    data = hysteresis(quadrature(layout.mesh), layout.ip_points, fields, target.material, rom.times, period)
    pattern = target.metadata["load_pattern"]
    top = reference.reaction_names.index(pattern)
    lifted = list(model.lifting["lifting_names"]).index(pattern)
    data.update(displacement=np.asarray(rom.lifting_coefficients[:, lifted], dtype=float),
                force_hf=np.asarray(reference.reactions[:, top, 1], dtype=float),
                force_rom=np.asarray(rom.reactions[:, lifted], dtype=float))
    for who in ("hf", "rom"):
        data[f"reaction_loop_area_{who}"] = loop_areas(data["displacement"], data[f"force_{who}"], rom.times, period)
    data.update({f"error_{name}": values for name, values in step_errors(fields).items()},
                indicator=np.asarray(rom.indicator, dtype=float),
                indicator_threshold=OnlineOptions().indicator_threshold)
    figures = reduction_figures(model, layout, rom, fields)
    figures["hysteresis"] = hysteresis_figure(data)
    figures["force_displacement"] = force_displacement_figure(data["displacement"], data["force_hf"],
                                                              data["force_rom"])
    return figures, data


def _hysteresis_summary(data: dict) -> dict:
    """The hysteresis figures of summary.json (the arrays go to plot_data.npz)."""
    keys = ("position", "point", "component", "loop_area_hf", "loop_area_rom", "plastic_strain_range_hf",
            "plastic_strain_range_rom", "stress_error", "reaction_loop_area_hf", "reaction_loop_area_rom")
    return {"coordinates": [float(v) for v in data["coordinates"]], **{k: data[k] for k in keys if k in data}}


def _save(out: Path, figures: dict) -> list[Path]:
    """Writes each figure as ``out/<name>.png``; returns the paths."""
    paths = []
    for name, fig in figures.items():
        paths.append(out / f"{name}.png")
        fig.savefig(paths[-1], dpi=120)
    return paths


def output_sizes(out: Path, paths) -> dict[str, int]:
    """Bytes written per output (folders summed; a VTU series' ``.pvd`` with its ``.vtu`` files)."""
    sizes = {}
    for path in map(Path, paths):
        if path.is_dir():
            sizes[path.name] = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
        elif path.suffix == ".pvd":
            series = [path, *out.glob(f"{path.stem}_*.vtu")]
            sizes[f"{path.name} + {len(series) - 1} .vtu"] = sum(f.stat().st_size for f in series)
        elif path.exists():
            sizes[path.name] = path.stat().st_size
    return sizes


def estimate_output(runs, vtu: bool = True) -> int:
    """Rough bytes a demo writes for the problems ``runs`` (the training runs, then the
    reference): the store (displacement, stress and state of every step, float64; Blosc-lz4 keeps
    about 30 % on the plate), the model with its full bases (about 15 % of the store) and the
    reference's VTU series (points, HF and ROM displacements and their difference, cell means of
    von Mises and p). Within 10 % of the plate demo's sizes at 300 and 4,000 nodes."""
    runs = list(runs)
    mesh = runs[-1].mesh
    n_points = quadrature(mesh).n_points
    n_state = max(p.material.n_state for p in runs)
    steps = sum(len(p.times) for p in runs)
    store = steps * (3 * mesh.n_nodes + (6 + n_state) * n_points) * 8 * 3 // 10
    series = len(runs[-1].times) * (12 * mesh.n_nodes + 4 * mesh.n_elements) * 8 if vtu else 0
    return store + store * 15 // 100 + series


def planned_output(settings: DemoSettings, vtu: bool = True) -> int:
    """:func:`estimate_output` of the plate demo with ``settings`` (builds the meshes only)."""
    runs = [_problem(settings, a, settings.train_cycles) for a in settings.train]
    return estimate_output([*runs, _problem(settings, settings.predict, settings.cycles)], vtu)


def write_summary(out: Path, figures: dict, extra: dict | None = None) -> Path:
    """``summary.json``: the summary figures (times in s, errors relative [-], sizes), the units
    of the reference problems, and the outputs with their sizes (bytes)."""
    summary = {k: v for k, v in figures.items() if k != "files"}
    summary.update(extra or {})
    summary["units"] = {"length": "mm", "force": "N", "stress": "MPa", "time": "s", "energy per volume": "MJ/m^3",
                        "energy": "mJ", "errors": "relative [-]"}
    path = out / "summary.json"
    summary["files"] = [str(Path(p).relative_to(out)) if Path(p).is_relative_to(out) else str(p)
                        for p in [*figures["files"], path]]
    path.write_text(json.dumps(summary, indent=1))
    return path


def result_rows(f: dict) -> list[tuple[str, str]]:
    """The rows of a demo's table shared by the plate and the thermal demo: times, speedup, errors
    (law replay and Gappy-POD) and the error indicator."""
    return [
        ("HF time", f"{f['hf_time']:.2f} s"),
        ("online time", f"{f['online_time']:.3f} s"),
        ("speedup", f"{f['speedup']:.0f}x"),
        ("error displacement (L2 time-space)", f"{f['error_displacement']:.2e}"),
        ("error von Mises (max, of max)", (f"{100 * f['error_von_mises']:.2f} % law replay "
                                           f"({f['replay_time']:.1f} s), {100 * f['error_von_mises_gappy']:.2f} % "
                                           f"Gappy-POD (max {f['max_von_mises']:.0f} MPa)")),
        ("error plastic strain (max, of max)", (f"{100 * f['error_p']:.2f} % law replay, "
                                               f"{100 * f['error_p_gappy']:.2f} % Gappy-POD (max p {f['max_p']:.2e})")),
        ("max error indicator", (f"{f['max_indicator']:.2e} (threshold {f['indicator_threshold']:g}: "
                                f"{f['flagged_steps']} flagged steps)")),
    ]


def summary_table(figures: dict, settings: DemoSettings) -> list[tuple[str, str]]:
    """The demo's printed table as (label, value) rows."""
    f = figures
    return [
        ("mesh", f"{f['nodes']:,} nodes / {f['dofs']:,} dofs"),
        ("training", (f"{len(settings.train)} HF runs, amplitudes {', '.join(f'{a:g}' for a in settings.train)} mm, "
                     f"{settings.train_cycles:g} cycle(s): {f['hf_training_time']:.1f} s")),
        ("reduced model", f"{f['n_modes']} modes, {f['n_points']} of {f['n_points_full']:,} integration points"),
        ("offline time (reduce)", f"{f['offline_time']:.1f} s"),
        ("prediction", f"amplitude {settings.predict:g} mm, {settings.cycles:g} cycles"),
    ] + result_rows(f) + _hysteresis_rows(f)


def _hysteresis_rows(f: dict) -> list[tuple[str, str]]:
    """The summary rows of the hysteresis at the most loaded point (with plots only)."""
    h = f.get("hysteresis")
    if not h:
        return []
    where = ", ".join(f"{v:.3g}" for v in h["coordinates"])
    c = h["component"]
    return [
        ("most loaded point", f"({where}) mm, stress component {c}"),
        ("loop width (plastic strain range)", (f"{h['plastic_strain_range_hf']:.2e} HF, "
                                               f"{h['plastic_strain_range_rom']:.2e} ROM (last cycle)")),
        ("dissipated per cycle (at the point)", ", ".join(f"{a:.3g} / {b:.3g}" for a, b in zip(
            h["loop_area_hf"], h["loop_area_rom"])) + " MJ/m^3 HF / ROM"),
    ]
