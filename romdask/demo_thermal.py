"""The whole romdask pipeline on the thermomechanical reference problem (``romdask demo --problem thermal``).

The spinning blade of :mod:`romdask.problems.thermal` under flight cycles (temperature-dependent
viscoplastic law, thermal expansion, centrifugal load), as the plate demo of :mod:`romdask.demo`:

1. high fidelity: one flight cycle at each training (peak temperature, rotation speed), built-in
   solver, written into a snapshot store;
2. offline: :func:`romdask.offline.reduce` on a LocalCluster (the temperature is an input of the
   model: it keeps the temperature operator at its reduced points);
3. online: an unseen flight (peak temperature and speed between the training ones) over several
   cycles; the built-in solver computes the same case as the reference.

:func:`run_thermal_demo` returns the summary figures and writes plots (temperature field,
plastic strain, reduction) and VTU fields.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from dask.system import CPU_COUNT

from romdask.demo import (
    _cell_mean,
    _save,
    _vtu,
    compare,
    output_sizes,
    pipeline,
    reduction_figures,
    result_rows,
    write_summary,
)
from romdask.demo_plots import HF_STYLE, _rom_style
from romdask.problems.thermal import thermal_problem
from romdask.store import create_store, open_snapshots
from romdask.store.layout import node_map

__all__ = ["ThermalDemoSettings", "run_thermal_demo", "thermal_figures", "thermal_summary_table"]


@dataclass(frozen=True)
class ThermalDemoSettings:
    """What the thermal demo trains on and predicts.

    Attributes
    ----------
    size : blade mesh size n (:func:`romdask.problems.thermal.blade_mesh`: 6 -> 525 nodes,
        8 -> 1,188)
    train : (peak temperature [C], rotation speed [rad/s]) of each training flight
    predict : the unseen flight
    cycles : flight cycles of the prediction (more than the training's: cyclic extrapolation)
    train_cycles : flight cycles of each training run
    increments_per_cycle : a multiple of 10 (:func:`romdask.problems.thermal.flight_times`)
    tol_pod, tol_ecm : offline tolerances
    workers : LocalCluster workers (None: one per core)
    subdomains : store subdomains (None: 2 per worker)
    """

    size: int = 6
    train: tuple[tuple[float, float], ...] = ((925.0, 1350.0), (975.0, 1450.0))
    predict: tuple[float, float] = (950.0, 1400.0)
    cycles: int = 3
    train_cycles: int = 2
    increments_per_cycle: int = 40
    tol_pod: float = 1e-6
    tol_ecm: float = 1e-5
    workers: int | None = None
    subdomains: int | None = None

    def problem(self, flight: tuple[float, float], cycles: int):
        peak, omega = flight
        return thermal_problem(self.size, cycles, peak, omega, increments_per_cycle=self.increments_per_cycle)


def run_thermal_demo(
    out: str | Path,
    settings: ThermalDemoSettings = ThermalDemoSettings(),
    *,
    progress: Callable[[str], Callable | None] = lambda label: None,
    plots: bool = True,
    vtu: bool = True,
) -> dict:
    """Train, reduce, predict and compare on the spinning blade; write plots and VTU fields.

    Parameters
    ----------
    out : output folder (created): ``store.zarr``, ``model.zarr``, ``*.png``, ``rom.pvd``,
        ``summary.json``
    settings : ThermalDemoSettings
    progress : ``label -> callback`` for the built-in solver's progress, or None
    plots, vtu : write the figures / the VTU series

    Returns
    -------
    dict of the summary figures plus ``"files"`` (see :func:`romdask.demo.run_demo`; the errors
    are those of :func:`romdask.demo.compare`) and ``max_temperature``, ``plastified`` (the
    fraction of integration points with p > 0 at the end of the HF reference).

    Notes
    -----
    The online time excludes numba compilation (one warm-up solve of the first increment). The
    temperature is never reduced: the model maps the scenario's nodal temperatures to its points.
    """
    from romdask.online import OnlineOptions, open_full

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    target = settings.problem(settings.predict, settings.cycles)
    mesh = target.mesh
    workers = settings.workers or CPU_COUNT
    store_path = out / "store.zarr"
    store = create_store(store_path, mesh, n_subdomains=settings.subdomains or 2 * workers, overwrite=True)
    runs = {f"train-{peak:g}C-{omega:g}rad": settings.problem((peak, omega), settings.train_cycles)
            for peak, omega in settings.train}
    # 1.-3. training flights, reduction, prediction and its HF reference
    figures, model_path, model, rom, _ = pipeline(store, runs, target, out, settings, progress)
    figures["files"] = []

    # 4. errors on the whole mesh
    hf = open_snapshots(store_path, runs=["reference"])
    errors, fields = compare(open_full(model_path), rom, hf, target.material)
    layout = store.layout
    order = node_map(layout.mesh, mesh)  # the store's node order
    temperature = np.array([target.nodal_temperature(t) for t in rom.times])[:, order]
    figures.update(errors, max_indicator=float(np.max(rom.indicator)),
                   flagged_steps=int(np.count_nonzero(rom.flagged)), max_temperature=float(temperature.max()),
                   plastified=float(np.mean(fields["p_hf"][-1] > 0)))
    figures["indicator_threshold"] = OnlineOptions().indicator_threshold
    if plots:
        figures["files"] += _save(out, thermal_figures(model, layout, rom, target, temperature, fields))
    if vtu:
        figures["files"].append(_vtu(out, layout, rom.times, fields, {"temperature": temperature}))
    figures["output_bytes"] = output_sizes(out, [store_path, model_path, *figures["files"]])
    figures["files"] = [store_path, model_path, *figures["files"]]
    figures["files"].append(write_summary(out, figures))
    return figures


def thermal_figures(model, layout, rom, target, temperature, fields) -> dict:
    """The shared figures (:func:`romdask.demo.reduction_figures`) plus ``temperature`` and
    ``plastic_strain``: maps on the section plane z = 0 (the element layer on it; x = span,
    y = chord) over histories. ``temperature`` (n_t, n_nodes) and ``fields``
    (:func:`romdask.demo.compare`) are in the store's node and point order; returns name ->
    matplotlib Figure."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    figures = reduction_figures(model, layout, rom, fields)
    mesh = layout.mesh
    if len(mesh.blocks) != 1:  # pragma: no cover - the blade is one block
        raise ValueError("the thermal demo's plots expect a single-block mesh")
    conn = np.asarray(mesh.blocks[0].connectivity)
    corners = conn[:, :4] if mesh.blocks[0].type in ("C3D4", "C3D10") else conn[:, :8]
    layer = np.unique(mesh.surfaces["zsym"][:, 0])  # elements with a face on z = 0
    centroid = mesh.nodes[corners[layer]].mean(axis=1)
    times = rom.times
    period = target.metadata["period"]
    heat_up, hold = np.argmin(np.abs(times - 0.1 * period)), np.argmin(np.abs(times - 0.4 * period))

    def maps(fig, rows, cmap: str, label: str):
        """Two maps one above the other (the section is long and narrow), a history below;
        ``rows`` = (values per element of ``layer``, title) x 2, returns the history's axes."""
        grid = fig.add_gridspec(3, 1, height_ratios=[1, 1, 1.8])
        top = max(max(float(v.max()) for v, _ in rows), 1e-12)
        axes = [fig.add_subplot(grid[k, 0]) for k in range(2)]
        for ax, (values, title) in zip(axes, rows):
            c = ax.tricontourf(centroid[:, 0], centroid[:, 1], np.clip(values, 0.0, top),
                               levels=np.linspace(0.0, top, 21), cmap=cmap)
            ax.set(aspect="equal", xlabel="x (span) [mm]", ylabel="y (chord) [mm]", title=title)
        fig.colorbar(c, ax=axes, shrink=0.9, label=label, ticks=MaxNLocator(6))
        return fig.add_subplot(grid[2, 0])

    fig = Figure(figsize=(9, 8), layout="constrained")
    history = maps(fig, [(temperature[k][corners[layer]].mean(axis=1), f"T at t = {times[k]:g} s ({name})")
                         for k, name in ((heat_up, "heat-up"), (hold, "hold"))], "inferno", "temperature [C]")
    x = mesh.nodes
    tip = mesh.node_sets["tip"]
    for y, name in ((x[tip, 1].min(), "tip, core"), (x[tip, 1].max(), "tip, edge")):
        node = tip[np.argmin(np.abs(x[tip, 1] - y) + x[tip, 2])]
        history.plot(times, temperature[:, node], label=name)
    spin = next(load for load in target.loads if load.name == "rotation")
    history.plot(times, [temperature.max() * spin.scale(t) for t in times], "k:", lw=1, label="omega^2 (scaled)")
    history.set(xlabel="time [s]", ylabel="temperature [C]", title="Flight cycles")
    history.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    figures["temperature"] = fig

    p_hf, p_rom = _cell_mean(layout, fields["p_hf"]), _cell_mean(layout, fields["p_rom"])
    fig = Figure(figsize=(9, 8), layout="constrained")
    history = maps(fig, [(p_hf[-1, layer], f"p at t = {times[-1]:g} s, HF (built-in)"),
                         (p_rom[-1, layer], f"p at t = {times[-1]:g} s, ROM")], "viridis",
                   "equivalent plastic strain p [-]")
    history.plot(times, fields["p_hf"].max(axis=1), **HF_STYLE, label="max p, HF")
    history.plot(times, fields["p_rom"].max(axis=1), **_rom_style(len(times)), label="max p, ROM")
    history.set(xlabel="time [s]", ylabel="equivalent plastic strain p [-]", title="Plastic strain history")
    history.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    figures["plastic_strain"] = fig
    return figures


def thermal_summary_table(figures: dict, settings: ThermalDemoSettings) -> list[tuple[str, str]]:
    """The thermal demo's printed table as (label, value) rows."""
    f = figures
    flights = ", ".join(f"{p:g} C / {w:g} rad/s" for p, w in settings.train)
    return [
        ("mesh", f"{f['nodes']:,} nodes / {f['dofs']:,} dofs (blade size {settings.size})"),
        ("training", (f"{len(settings.train)} HF flights ({flights}), {settings.train_cycles} cycle(s): "
                     f"{f['hf_training_time']:.1f} s")),
        ("reduced model", f"{f['n_modes']} modes, {f['n_points']} of {f['n_points_full']:,} integration points"),
        ("offline time (reduce)", f"{f['offline_time']:.1f} s"),
        ("prediction", (f"{settings.predict[0]:g} C / {settings.predict[1]:g} rad/s, {settings.cycles} cycles "
                       f"(max temperature {f['max_temperature']:.0f} C, {100 * f['plastified']:.0f} % of the points "
                       "plastified)")),
    ] + result_rows(f)
