"""The demos' figures, as functions of plain arrays that return matplotlib Figures.

Every function builds a :class:`matplotlib.figure.Figure` (no pyplot state, no backend switch, not
saved, not shown): the demos save them (:mod:`romdask.demo`), the notebooks display them, the
tests inspect their axes. Units are those of the reference problems: mm, N, MPa, s.

- :func:`hysteresis` / :func:`hysteresis_figure`: stress-strain loops at the most loaded
  integration point, high fidelity (HF) and reduced model (ROM) overlaid;
- :func:`force_displacement_figure`: reaction force against the prescribed displacement, and the
  same minus the initial elastic line (where the loops show);
- :func:`step_errors` / :func:`error_history_figure`: the ROM's errors over time, one axis per
  quantity, and the error indicator with its threshold;
- :func:`singular_values_figure`, :func:`reduced_points_figure`: the offline reduction.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from matplotlib.figure import Figure

from romdask.fem.mesh import Mesh
from romdask.fem.quadrature import Quadrature
from romdask.materials.base import Material

__all__ = [
    "error_history_figure",
    "force_displacement_figure",
    "hysteresis",
    "hysteresis_figure",
    "loop_areas",
    "most_loaded_point",
    "point_strain",
    "reduced_points_figure",
    "singular_values_figure",
    "step_errors",
]

COMPONENTS = ("xx", "yy", "zz", "xy", "xz", "yz")
HF_STYLE = {"color": "k", "ls": "-", "lw": 1.6}
ROM_STYLE = {"color": "C3", "ls": "--", "lw": 1.2, "marker": "o", "ms": 3.5, "mfc": "none"}
_EDGES = {
    "C3D4": ((0, 1), (1, 2), (2, 0), (0, 3), (1, 3), (2, 3)),
    "C3D8": ((0, 1), (1, 2), (2, 3), (3, 0), (4, 5), (5, 6), (6, 7), (7, 4), (0, 4), (1, 5), (2, 6), (3, 7)),
}
_EDGES.update({"C3D10": _EDGES["C3D4"], "C3D20": _EDGES["C3D8"], "C3D20R": _EDGES["C3D8"]})


def _rom_style(n_points: int, markers: int = 30) -> dict:
    """ROM lines: dashed, with a marker every ``k`` points (about ``markers`` in all)."""
    return {**ROM_STYLE, "markevery": max(1, n_points // markers)}


def _outside_legend(ax, loc: str = "outside lower center") -> None:
    """The legend of ``ax`` outside the axes (a figure legend the constrained layout makes room
    for: below the axes in one row by default), never over the data."""
    handles, labels = ax.get_legend_handles_labels()
    ax.figure.legend(handles, labels, loc=loc, fontsize=8, ncols=min(len(labels), 4) if "lower" in loc else 1)


def _log_limits(ax, values, top: float | None = None, decades: float = 8.0) -> None:
    """y limits of a log axis from the data: up to ``decades`` below the largest value (or
    ``top``), never below the smallest positive value / 3."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v) & (v > 0)]
    if v.size == 0:
        return
    high = max(float(v.max()), top or 0.0)
    ax.set_ylim(max(float(v.min()), high * 10.0**-decades) / 3, high * 3)


# ---- data ------------------------------------------------------------------------------------


def most_loaded_point(p: np.ndarray, von_mises: np.ndarray) -> int:
    """Index (along axis 1) of the point with the largest final cumulated plastic strain ``p``
    (n_t, N), or with the largest von Mises stress over time when nothing plastifies."""
    final = np.nan_to_num(np.asarray(p)[-1])
    if final.max() > 0:
        return int(np.argmax(final))
    return int(np.argmax(np.nanmax(np.asarray(von_mises), axis=0)))


def point_strain(quad: Quadrature, point: int, displacement: np.ndarray) -> np.ndarray:
    """Small strain (n_t, 6), engineering shear, at one integration point (``quad``'s global
    numbering) for displacements (n_t, n_dofs); the same as :func:`romdask.fem.quadrature.strain`
    at that point, without the whole mesh's strains."""
    u = np.asarray(displacement, dtype=np.float64)
    for b in quad.blocks:
        n_el, n_ip = b.dNdx.shape[:2]
        if b.ip_offset <= point < b.ip_offset + n_el * n_ip:
            element, local = divmod(point - b.ip_offset, n_ip)
            u3 = u.reshape(u.shape[0], -1, 3)[:, b.connectivity[element]]  # (n_t, n_en, 3)
            H = np.einsum("tai,aj->tij", u3, b.dNdx[element, local])  # du_i / dx_j
            return np.stack([H[:, 0, 0], H[:, 1, 1], H[:, 2, 2], H[:, 0, 1] + H[:, 1, 0],
                             H[:, 0, 2] + H[:, 2, 0], H[:, 1, 2] + H[:, 2, 1]], axis=1)
    raise ValueError(f"point {point} is not an integration point of the mesh ({quad.n_points} points)")


def loop_areas(x: np.ndarray, y: np.ndarray, times: np.ndarray, period: float) -> list[float]:
    """Area enclosed by the curve ``(x, y)`` over each full cycle ``[k T, (k + 1) T]`` (shoelace
    formula on the cycle's points, closed by a straight segment): the energy dissipated per cycle
    when ``x, y`` are strain and stress (MPa = MJ/m^3) or displacement [mm] and force [N] (mJ)."""
    times = np.asarray(times)
    areas = []
    for k in range(int(np.floor(times[-1] / period + 1e-9))):
        inside = (times >= k * period - 1e-9 * period) & (times <= (k + 1) * period + 1e-9 * period)
        a, b = np.asarray(x)[inside], np.asarray(y)[inside]
        areas.append(float(0.5 * abs(np.dot(a, np.roll(b, -1)) - np.dot(b, np.roll(a, -1)))))
    return areas


def hysteresis(quad: Quadrature, ip_points: np.ndarray, fields: Mapping[str, np.ndarray], law: Material,
               times: np.ndarray, period: float, point: int | None = None) -> dict:
    """Stress, strain and plastic strain histories at the most loaded integration point, HF and ROM.

    Parameters
    ----------
    quad : :func:`romdask.fem.quadrature.quadrature` of the store's mesh
    ip_points : (N,) global integration point of each store ip position (``layout.ip_points``)
    fields : ``u_hf, u_rom`` (n_t, n_dofs) and ``s_hf, s_rom`` (n_t, N, 6), ``p_hf``, ``vm_hf``
        (n_t, N) as returned by :func:`romdask.demo.compare`
    law : the constitutive law (its elastic stiffness at zero temperature gives the plastic strain
        ``eps - C^-1 sigma``; isothermal problems only)
    times, period : output times and the load cycle's period [s]
    point : the store ip position to look at (default :func:`most_loaded_point` of the HF run)

    Returns
    -------
    dict
        ``position, point, coordinates`` (mm), ``component`` (the Voigt component whose HF stress
        varies most there),
        ``times``; ``strain_hf, strain_rom, plastic_strain_hf, plastic_strain_rom, stress_hf,
        stress_rom`` (n_t,) of that component (engineering shear); ``loop_area_hf, loop_area_rom``
        (MPa = MJ/m^3 per full cycle), ``plastic_strain_range_hf, _rom`` (the loop's width over the
        last full cycle, or the whole history), ``stress_error`` (largest difference of the stress
        component over time relative to its largest HF magnitude).
    """
    position = most_loaded_point(fields["p_hf"], fields["vm_hf"]) if point is None else int(point)
    global_point = int(np.asarray(ip_points)[position])
    elastic = law.integrate(np.zeros((1, 6)), law.initial_state(1), 0.0, 0.0)[1][0]
    compliance = np.linalg.inv(elastic)
    out: dict = {"position": position, "point": global_point, "coordinates": np.asarray(quad.coordinates[global_point]),
                 "times": np.asarray(times, dtype=float)}
    series = {}
    for who in ("hf", "rom"):
        strain = point_strain(quad, global_point, fields[f"u_{who}"])
        stress = np.asarray(fields[f"s_{who}"])[:, position]
        series[who] = (strain, stress, strain - stress @ compliance.T)
    component = int(np.argmax(np.ptp(series["hf"][1], axis=0)))
    out["component"] = COMPONENTS[component]
    for who, (strain, stress, plastic) in series.items():
        out[f"strain_{who}"] = strain[:, component]
        out[f"stress_{who}"] = stress[:, component]
        out[f"plastic_strain_{who}"] = plastic[:, component]
        out[f"loop_area_{who}"] = loop_areas(strain[:, component], stress[:, component], times, period)
        last = times >= (len(out[f"loop_area_{who}"]) - 1) * period - 1e-9 * period
        out[f"plastic_strain_range_{who}"] = float(np.ptp(plastic[last, component]))
    scale = max(float(np.abs(out["stress_hf"]).max()), 1e-300)
    out["stress_error"] = float(np.abs(out["stress_rom"] - out["stress_hf"]).max() / scale)
    return out


def step_errors(fields: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The ROM's errors at every output time (n_t,) from :func:`romdask.demo.compare`'s fields:
    ``displacement`` ``||u_rom(t) - u_hf(t)|| / max_t ||u_hf(t)||``, ``von_mises`` and ``p`` the
    largest pointwise difference at t relative to the largest HF value over all times and points
    (the summary's errors are the largest of these over time)."""
    u_rom, u_hf = np.asarray(fields["u_rom"]), np.asarray(fields["u_hf"])
    out = {"displacement": np.linalg.norm(u_rom - u_hf, axis=1) / max(np.linalg.norm(u_hf, axis=1).max(), 1e-300)}
    for name, short in (("von_mises", "vm"), ("p", "p")):
        rom, hf = np.asarray(fields[f"{short}_rom"]), np.nan_to_num(np.asarray(fields[f"{short}_hf"]))
        out[name] = np.abs(np.nan_to_num(rom) - hf).max(axis=1) / max(float(hf.max()), 1e-300)
    return out


# ---- figures ---------------------------------------------------------------------------------


def _symbol(component: str, plastic: bool = False) -> str:
    """Mathtext strain symbol of a Voigt component (engineering shear: gamma)."""
    base = r"\varepsilon" if component[0] == component[1] else r"\gamma"
    return f"${base}^{{p}}_{{{component}}}$" if plastic else f"${base}_{{{component}}}$"


def hysteresis_figure(data: Mapping, *, reference: str = "HF (built-in solver)") -> Figure:
    """Stress against total strain and against plastic strain at one point, HF and ROM overlaid
    (``data`` from :func:`hysteresis`; ``reference`` names the HF solver in the legend)."""
    c = data["component"]
    fig = Figure(figsize=(11, 4.6), layout="constrained")
    axes = fig.subplots(1, 2)
    n = len(data["times"])
    for ax, key, xlabel in ((axes[0], "strain", f"total strain {_symbol(c)} [-]"),
                            (axes[1], "plastic_strain", f"plastic strain {_symbol(c, True)} [-]")):
        ax.plot(data[f"{key}_hf"], data["stress_hf"], **HF_STYLE, label=reference)
        ax.plot(data[f"{key}_rom"], data["stress_rom"], **_rom_style(n), label="ROM (law replayed at every point)")
        ax.plot(data[f"{key}_hf"][:1], data["stress_hf"][:1], "o", color="C2", ms=7, label="start (t = 0)")
        ax.set(xlabel=xlabel, ylabel=f"stress $\\sigma_{{{c}}}$ [MPa]")
        ax.grid(alpha=0.3)
        ax.ticklabel_format(axis="x", style="sci", scilimits=(-3, 3))
    xyz = data.get("coordinates")
    where = f" ({', '.join(f'{v:.3g}' for v in xyz)}) mm" if xyz is not None else ""
    areas = ", ".join(f"{a:.3g} / {b:.3g}" for a, b in zip(data["loop_area_hf"], data["loop_area_rom"]))
    axes[0].set_title(f"dissipated per cycle, HF / ROM: {areas} MJ/m$^3$", fontsize=9)
    axes[1].set_title(f"loop width (plastic strain range, last cycle): {data['plastic_strain_range_hf']:.2e} HF, "
                      f"{data['plastic_strain_range_rom']:.2e} ROM", fontsize=9)
    fig.suptitle(f"Hysteresis loops at the most loaded integration point{where}", fontsize=11)
    _outside_legend(axes[1])
    return fig


def force_displacement_figure(displacement: np.ndarray, force_hf: np.ndarray, force_rom: np.ndarray) -> Figure:
    """Reaction force against the prescribed displacement, and the same minus the initial
    elastic line ``K0 u`` (``K0`` the HF secant of the first loaded step), where the hysteresis
    loops show at the scale of the plastic force drop."""
    u = np.asarray(displacement, dtype=float)
    f_hf, f_rom = np.asarray(force_hf, dtype=float), np.asarray(force_rom, dtype=float)
    loaded = np.flatnonzero(np.abs(u) > 0)
    k0 = f_hf[loaded[0]] / u[loaded[0]] if loaded.size else 0.0
    fig = Figure(figsize=(11, 4.6), layout="constrained")
    axes = fig.subplots(1, 2)
    style = _rom_style(u.size)
    departure = f_hf - k0 * u
    axes[0].plot(u, f_hf, **HF_STYLE, label="HF (built-in solver)")
    axes[0].plot(u, f_rom, **style, label="ROM")
    axes[0].set(xlabel="prescribed displacement u [mm]", ylabel="reaction force F [N]")
    axes[0].set_title(f"the loops are {np.ptp(departure) / max(np.ptp(f_hf), 1e-300):.1%} of the force range",
                      fontsize=9)
    axes[1].plot(u, departure, **HF_STYLE, label="HF (built-in solver)")
    axes[1].plot(u, f_rom - k0 * u, **style, label="ROM")
    axes[1].set(xlabel="prescribed displacement u [mm]", ylabel=f"F - K0 u [N],  K0 = {k0:.4g} N/mm")
    axes[1].set_title("zoom: the force minus the initial elastic line", fontsize=9)
    fig.suptitle("Reaction force against the prescribed displacement (the loaded face, modelled part)", fontsize=11)
    for ax in axes:
        ax.grid(alpha=0.3)
    _outside_legend(axes[1])
    return fig


def error_history_figure(times: np.ndarray, errors: Mapping[str, np.ndarray], indicator: np.ndarray,
                         threshold: float) -> Figure:
    """The ROM's errors against the HF reference over time, one axis per quantity
    (:func:`step_errors`), and the error indicator with its threshold (steps above it flagged)."""
    titles = {
        "displacement": "displacement: ||u_ROM(t) - u_HF(t)|| / max_t ||u_HF||",
        "von_mises": "von Mises stress: max over points |vm_ROM - vm_HF| / max vm_HF",
        "p": "cumulated plastic strain p: max over points |p_ROM - p_HF| / max p_HF",
    }
    fig = Figure(figsize=(8, 9), layout="constrained")
    axes = fig.subplots(len(errors) + 1, 1, sharex=True)
    for ax, (name, values) in zip(axes, errors.items()):
        values = np.asarray(values, dtype=float)
        ax.semilogy(times, values, "C0-", lw=1.2)
        _log_limits(ax, values, decades=5)
        ax.set_ylabel("relative error [-]")
        finite = values[np.isfinite(values)]
        largest = f"largest {finite.max():.2e}" if finite.size else "not available"
        ax.set_title(f"{titles.get(name, name)}  ({largest})", fontsize=9)
        ax.grid(alpha=0.3, which="both")
    ax = axes[-1]
    indicator = np.asarray(indicator, dtype=float)
    ax.semilogy(times, indicator, "C1-", lw=1.2, label="error indicator")
    ax.axhline(threshold, color="C3", ls="--", lw=1.0, label=f"threshold {threshold:g} (flags a step)")
    flagged = indicator > threshold
    if flagged.any():
        ax.semilogy(np.asarray(times)[flagged], indicator[flagged], "x", color="C3",
                    label=f"flagged steps ({flagged.sum()})")
    _log_limits(ax, indicator, top=threshold, decades=5)
    ax.set(xlabel="time [s]", ylabel="indicator [-]")
    ax.set_title("error indicator (no HF needed): Gappy-POD misfit of p at the reduced points", fontsize=9)
    ax.grid(alpha=0.3, which="both")
    _outside_legend(ax, "outside lower center")
    fig.suptitle("ROM against the HF reference over time", fontsize=10)
    return fig


def singular_values_figure(singular_values: np.ndarray, n_modes: int, tol: float,
                           gappy: Mapping[str, np.ndarray] | None = None) -> Figure:
    """Normalized singular values ``s_i / s_1`` of the displacement POD (and the Gappy-POD
    snapshots), the truncation tolerance and the kept rank. Values below machine precision are
    drawn at it (they are round-off)."""
    floor = np.finfo(float).eps
    fig = Figure(figsize=(7.5, 4.2), layout="constrained")
    ax = fig.add_subplot()
    shown = []
    for label, values, style in [("displacement (POD)", singular_values, "o-")] + \
            [(f"{name} (Gappy-POD)", v, ".-") for name, v in (gappy or {}).items()]:
        s = np.abs(np.asarray(values, dtype=float))
        if s.size == 0 or s[0] == 0:
            continue
        r = np.maximum(s / s[0], floor)
        shown.append(r)
        ax.semilogy(np.arange(1, r.size + 1), r, style, ms=3.5, lw=1, label=label)
    ax.axhline(tol, color="grey", lw=1.0, ls="--", label=f"truncation tolerance {tol:g}")
    ax.axvline(n_modes, color="C3", lw=1.0, ls=":", label=f"kept: {n_modes} modes")
    if shown:
        s0 = shown[0]
        ax.plot([n_modes], [s0[min(n_modes, s0.size) - 1]], "*", color="C3", ms=12)
        low = min(float(np.min(r)) for r in shown)
        ax.set_ylim(low / 3, 3)
    ax.set(xlabel="index i", ylabel="$s_i / s_1$ [-]")
    ax.set_title("Singular values of the training snapshots\n(values below machine precision are round-off, "
                 "drawn at it)", fontsize=10)
    ax.grid(alpha=0.3, which="both")
    _outside_legend(ax, "outside right upper")
    return fig


def reduced_points_figure(mesh: Mesh, coordinates: np.ndarray, weights: np.ndarray,
                          xy: tuple[int, int] = (0, 1)) -> Figure:
    """The reduced integration points (ECM points: weight > 0; Q-DEIM points for the Gappy bases:
    weight 0) over the mesh's edges, projected on the ``xy`` coordinates [mm]; a second panel
    zooms on where most points are (the central 90 % of them) when that is a small part of the
    part."""
    from matplotlib.collections import LineCollection

    a, b = xy
    xyz, ecm = np.asarray(coordinates), np.asarray(weights) > 0
    lo, hi = np.percentile(xyz[:, [a, b]], 5, axis=0), np.percentile(xyz[:, [a, b]], 95, axis=0)
    extent = np.ptp(mesh.nodes[:, [a, b]], axis=0)
    margin = 0.1 * max(float(np.max(hi - lo)), 0.02 * float(np.max(extent)))
    zoom = xyz.shape[0] > 0 and bool(np.all(hi - lo + 2 * margin < 0.4 * extent))
    ratio = float(extent[0] / extent[1]) if extent[1] > 0 else 1.0
    fig = Figure(figsize=(11, 5.8) if zoom else (7, float(np.clip(6.4 / ratio + 1.6, 3.2, 7))), layout="constrained")
    axes = fig.subplots(1, 2 if zoom else 1, squeeze=False)[0]
    segments = []
    for block in mesh.blocks:
        edges = np.asarray(_EDGES.get(block.type, ()), dtype=np.int64).reshape(-1, 2)
        pairs = np.asarray(block.connectivity)[:, edges].reshape(-1, 2)
        segments.append(np.unique(np.sort(pairs, axis=1), axis=0))
    pairs = np.concatenate(segments) if segments else np.zeros((0, 2), np.int64)
    names = "xyz"
    for ax in axes:
        if pairs.size:
            ax.add_collection(LineCollection(mesh.nodes[pairs][:, :, [a, b]], colors="0.8", linewidths=0.4,
                                             label="mesh (projected)"))
        ax.plot(mesh.nodes[:, a], mesh.nodes[:, b], ",", color="0.6")
        ax.scatter(xyz[ecm, a], xyz[ecm, b], s=22, c="C3", edgecolors="k", linewidths=0.4, zorder=3,
                   label=f"ECM points ({ecm.sum()}, weight > 0)")
        ax.scatter(xyz[~ecm, a], xyz[~ecm, b], s=45, marker="x", c="C0", linewidths=1.5, zorder=3,
                   label=f"Q-DEIM points ({(~ecm).sum()}, for Gappy-POD)")
        ax.set(aspect="equal", xlabel=f"{names[a]} [mm]", ylabel=f"{names[b]} [mm]")
    axes[0].set_title("Reduced integration points (projected)", fontsize=10)
    if zoom:
        axes[1].set(xlim=(lo[0] - margin, hi[0] + margin), ylim=(lo[1] - margin, hi[1] + margin))
        axes[1].set_title("zoom on 90 % of them", fontsize=10)
        axes[0].indicate_inset_zoom(axes[1], edgecolor="0.3")
    _outside_legend(axes[0])
    return fig
