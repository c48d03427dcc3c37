"""Regenerate docs/benchmarks.md from benchmarks/results.json (or render another results file: --results, --out)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
DOC = HERE.parent / "docs" / "benchmarks.md"


def builtin_solver_table(entry: dict) -> list[str]:
    lines = [
        f"## Built-in solver, quarter plate with a hole (C3D8), one cycle ({entry['date']}, {entry['machine']})",
        "",
        "| nodes | dofs | increments | Newton iterations | factorizations | wall [s] | setup [s] | strain + material + force [s] | assembly [s] | linear solve [s] | peak RSS [MB] |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in entry["rows"]:
        t = r.get("timings_s", {})
        lines.append(
            f"| {r['nodes']:,} | {r['dofs']:,} | {r['increments']} | {r['newton_iterations']} | "
            f"{r['factorizations']} | {r['wall_s']:.1f} | {t['setup']:.1f} | "
            f"{t['strain'] + t['material'] + t['force']:.1f} | {t['assembly']:.1f} | {t['linear']:.1f} | "
            f"{r['peak_rss_mb']:.0f} |"
        )
    return lines + [""]


def ingest_table(entry: dict) -> list[str]:
    lines = [
        f"## Ingest of solver-made .npy sources (plate, one cycle) ({entry['date']}, {entry['machine']})",
        "",
        "Sources: displacement, stress and state of built-in solver runs saved as .npy (`python benchmarks/run.py",
        "ingest`); plain read = frame-by-frame read of the .npy files; ratio = source bytes / store bytes (runs",
        "only); store read = one full read of every variable through `open_snapshots` (threads).",
        "",
        "| nodes | dofs | runs x steps | source [MB] | plain read [MB/s] | ingest lz4 [MB/s] | ingest none [MB/s] "
        "| store lz4 [MB] (ratio) | store none [MB] (ratio) | lz4 ratio displacement / stress / state "
        "| store read lz4 / none [MB/s] | subdomains | peak RSS [MB] |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in entry["rows"]:
        lines.append(
            f"| {r['nodes']:,} | {r['dofs']:,} | {r['runs']} x {r['steps']} | {r['source_mb']:.0f} | "
            f"{r['plain_read_mb_s']:,.0f} | {r['ingest_lz4_mb_s']:.0f} | {r['ingest_none_mb_s']:.0f} | "
            f"{r['store_lz4_mb']:.0f} ({r['ratio_lz4']:.2f}) | {r['store_none_mb']:.0f} ({r['ratio_none']:.2f}) | "
            f"{r['ratio_lz4_displacement']:.2f} / {r['ratio_lz4_stress']:.2f} / {r['ratio_lz4_state']:.1f} | "
            f"{r['read_lz4_mb_s']:.0f} / {r['read_none_mb_s']:.0f} | {r['subdomains']} | {r['peak_rss_mb']:.0f} |"
        )
    return lines + [""]


def calculix_ingest_table(entry: dict) -> list[str]:
    lines = [
        f"## Ingest of CalculiX results (.inp + .frd), plate, one cycle ({entry['date']}, {entry['machine']})",
        "",
        "`python benchmarks/run.py calculix_ingest`: the plate (`plate_problem(n, n_cycles=1)`, 40 increments) run by",
        "ccx 2.20 (`*VISCO,DIRECT`, `SOLVER=ITERATIVE CHOLESKY`, 2 threads), U written as an ASCII .frd",
        "(`*NODE FILE`) or a float64 one (`*NODE OUTPUT,DOUBLE`). Throughputs are MB of source (.inp + .frd) per",
        "second, best of the run's repeats, files in the page cache. Raw = `open().read()` of the bytes; plain",
        "read = `read_inp` + `read_frd` + every DISP frame; reader = `read_calculix(...).frames()`; ingest =",
        "`romdask.store.ingest` into a new store with K subdomains (store creation and METIS included). Ratio =",
        "source bytes / bytes of the whole store folder (mesh included; K = 4).",
        "",
        "| nodes | .frd | ccx wall [s] | source [MB] (.frd) | raw read [MB/s] | plain read [MB/s] | reader [MB/s] "
        "| ingest lz4 K=2 / K=4 [MB/s] | ingest none K=2 / K=4 [MB/s] | store lz4 [MB] (ratio) "
        "| store none [MB] (ratio) | peak RSS [MB] |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in entry["rows"]:
        src = r["source_mb"]
        lines.append(
            f"| {r['nodes']:,} | {r['encoding']} | {r['ccx_s']:.1f} | {src:.1f} ({r['frd_mb']:.1f}) | "
            f"{r['raw_read_mb_s']:,.0f} | {r['plain_read_mb_s']:.0f} | {r['reader_mb_s']:.0f} | "
            f"{r['ingest_lz4_k2_mb_s']:.0f} / {r['ingest_lz4_k4_mb_s']:.0f} | "
            f"{r['ingest_none_k2_mb_s']:.0f} / {r['ingest_none_k4_mb_s']:.0f} | "
            f"{r['store_lz4_k4_mb']:.1f} ({r['ratio_lz4_k4']:.2f}) | "
            f"{r['store_none_k4_mb']:.1f} ({r['ratio_none_k4']:.2f}) | {r['peak_rss_mb']:.0f} |"
        )
    return lines + [""]


def _pod_name(r: dict) -> str:
    if r["method"] == "read":
        return "read pass" + (" (subdomain blocks)" if r.get("row_chunks") == "subdomain" else " (per-run blocks)")
    name = r["method"] + (" (L2)" if r["product"] == "l2" else "")
    if "row_chunks" in r:
        name += ", per-run blocks merged (old path)" if r["row_chunks"] == "run" else ", subdomain blocks"
    return name


def pod_table(entry: dict, before: dict | None = None) -> list[str]:
    st, npy = entry["store"], entry["numpy"]
    lines = [
        f"## POD of a {st['payload_gb']:.1f} GB snapshot store against one read pass ({entry['date']}, {entry['machine']})",
        "",
        f"`python benchmarks/run.py pod`: synthetic uncompressed store, `box(({round(st['nodes'] ** (1 / 3)) - 1},) * 3)` C3D8,",
        f"{st['nodes']:,} nodes, {st['dofs']:,} dofs, {st['runs']} runs x {st['steps']} frames = {st['snapshots']} snapshots,",
        f"{st['subdomains']} subdomains ({st['store_gb']:.2f} GB on disk, in the page cache); displacement = sum of",
        f"{st['synthetic_modes']} smooth modes with amplitudes 1 to 1e-5 x time coefficients + 1e-9 noise. `LocalCluster`,",
        *(["1 thread per worker, 3 GB memory limit, a new cluster for each method (peak = max over the workers of",
           "their own peak resident memory, `VmHWM`, for that method). Read = one pass over",
           "`open_snapshots(path, row_chunks=...).displacement.data`"] if st.get("peak_memory") == "VmHWM" else
          ["1 thread per worker, 3 GB memory limit, workers restarted before each method (peak = max `ru_maxrss` over",
           "the workers for that method; a floor, see below). Read = one pass over",
           "`open_snapshots(path, row_chunks=...).displacement.data`"]),
        "to a null `da.store` target. POD = `pod(U, method=..., tol=1e-6)` up to the singular values + lazy modes",
        "(L2: `product=mass_product(path)`, sub-meshes read inside the tasks); each POD repeat is preceded by a",
        "read pass of the default view (interleaved), \"of read\" = median over the repeats of read time / POD time",
        f"(the goal is >= 50 %); times are the best of {st['repeats']}. Modes = computing the modes to a null target.",
        "sv error = max relative error of the singular values with s_i/s_0 > 1e-6 against `np.linalg.svd` (no figure",
        "for L2: another product). Load = 1-min load average when the method ran (the machine has 2 cores and was",
        "shared with other jobs: ratios measured in the same minute are meaningful, absolute times less so).",
        "",
        "| workers | method | POD [s] | POD [GB/s] | of read | + modes [s] | total of read "
        "| speed-up 1 -> 2 workers | peak per worker [MB] | sv error vs numpy | vs numpy SVD | load |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in entry["rows"]:
        name = _pod_name(r)
        speed = f"{r['speedup_vs_1_worker']:.2f}" if "speedup_vs_1_worker" in r else ""
        load = f"{r['load_avg']:.1f}" if "load_avg" in r else ""
        if r["method"] == "read":
            lines.append(f"| {r['workers']} | {name} | {r['time_s']:.2f} | {r['gb_s']:.2f} | 100 % | | | {speed} | "
                         f"{r['peak_worker_mb']:.0f} | | | {load} |")
            continue
        err = f"{r['sv_max_rel_err_kept']:.1e}" if "sv_max_rel_err_kept" in r else ""
        vs = f"{r['speedup_vs_numpy_svd']:.1f}x faster" if "speedup_vs_numpy_svd" in r else ""
        lines.append(
            f"| {r['workers']} | {name} | {r['time_s']:.2f} | {r['gb_s']:.2f} | {100 * r['fraction_of_read']:.0f} % | "
            f"{r['modes_s']:.2f} | {100 * r['total_fraction_of_read']:.0f} % | {speed} | "
            f"{r['peak_worker_mb']:.0f} | {err} | {vs} | {load} |"
        )
    lines += [
        "",
        f"numpy in memory (this process, BLAS on both cores): loading the matrix {npy['load_s']:.1f} s; "
        f"`np.linalg.svd(X, full_matrices=False)` {npy['svd_s']:.1f} s ({npy['gb_s']:.2f} GB/s, "
        f"{100 * npy['fraction_of_read_2_workers']:.0f} % of the 2-worker read pass); peak RSS {npy['peak_rss_mb']:,.0f} MB; "
        f"{npy['n_sv_above_1e-6']} singular values with s_i/s_0 > 1e-6.",
        "",
    ]
    if st.get("peak_memory") != "VmHWM":
        lines += [
            "Peak per worker: these figures are `ru_maxrss`, which Linux keeps across fork + exec, so a worker",
            "spawned by the benchmark process reports at least that process's own peak so far (here the store",
            "writing): a value repeated over methods and worker counts is most likely that floor, not the workers'",
            "memory (not re-measured yet). `benchmarks/run.py` now reads `VmHWM` (each worker's own peak) on a new",
            "cluster per method; rerun `python benchmarks/run.py pod`.",
            "",
        ]
    g = entry.get("graph_bytes")
    if g:
        lines += [
            f"Pickled graph size at {g['nodes']:,} nodes, {g['subdomains']} subdomains (cloudpickle of the materialized "
            f"graph): L2 Gram {g['gram_l2_embedded'] / 1e6:.1f} MB with the sub-meshes embedded (product from the "
            f"layout, as before) vs {g['gram_l2_store'] / 1e6:.2f} MB with store references (product from the store "
            f"path; what remains are the halo index arrays); strains {g['strains_embedded'] / 1e6:.1f} MB vs "
            f"{g['strains_store'] / 1e6:.2f} MB; Euclidean Gram {g['gram_euclidean'] / 1e3:.0f} kB.",
            "",
        ]
    if before:
        old = {(r["workers"], r["method"], r["product"]): r for r in before["rows"]}
        parts = []
        for key, label in (((2, "snapshots", None), "snapshots"), ((2, "snapshots", "l2"), "snapshots L2"),
                           ((2, "tsqr", None), "TSQR")):
            if key in old:
                parts.append(f"{label} {old[key]['time_s']:.2f} s ({100 * old[key]['fraction_of_read']:.0f} % of read)")
        read = old.get((2, "read", None))
        if read:
            lines += [f"Before this change ({before['date']}, same store, 2 workers, per-run blocks merged, sub-meshes "
                      f"in the graph): read pass {read['time_s']:.2f} s; " + "; ".join(parts) + ".", ""]
    return lines


def ecm_table(entry: dict) -> list[str]:
    st = entry["store"]
    lines = [
        f"## ECM vs tolerance on the plate ({entry['date']}, {entry['machine']})",
        "",
        f"`python benchmarks/run.py ecm`: plate store written by the built-in solver ({st['nodes']:,} nodes, "
        f"{st['points']:,} integration points, {st['runs']} runs x {st['steps']} steps, {st['subdomains']} subdomains); "
        "one `reduce` per row (dask threads). Rows: `summed` = one integrand per (snapshot, mode or lifting), the "
        "reduced forces and reactions; `component` = one per Voigt component too; both compressed exactly by the "
        "stress snapshots' Gram eigenvectors (the count after x). Global = one ECM; subdomains = one per subdomain + "
        "a greedy ECM on the union of their points (against their integral, to the tolerance left; an NNLS on the "
        "union before 2026-12-07: 82 / 355 points at 1e-5 summed / component, now 70 / 272). Residual on the "
        "uncompressed rows, relative.",
        "",
        "| tol | rows | scope | modes | points | residual | ECM [s] | reduce [s] | points per subdomain | load |",
        "|---:|---|---|---:|---:|---:|---:|---:|---|---:|",
    ]
    for r in entry["rows"]:
        per = " / ".join(map(str, r["points_per_subdomain"])) if r.get("points_per_subdomain") else ""
        lines.append(f"| {r['tol']:.0e} | {r['rows']} | {r['scope']} | {r['n_modes']} | {r['points']} | "
                     f"{r['residual']:.1e} | {r['ecm_s']:.2f} | {r['reduce_s']:.1f} | {per} | {r['load_avg']:.1f} |")
    return lines + [""]


def scaling_table(entry: dict) -> list[str]:
    st = entry["store"]
    lines = [
        f"## Offline stage on 1 and 2 workers ({entry['date']}, {entry['machine']})",
        "",
        f"`python benchmarks/run.py scaling`: plate store written by the built-in solver ({st['nodes']:,} nodes, "
        f"{st['runs']} runs x {st['steps']} steps, {st['subdomains']} subdomains). `reduce(path, law)` end to end "
        "(lifting, POD L2, mode strains, ECM, Gappy, reduced loads; stresses from the solver) and the L2 POD alone "
        "(+ modes computed) with the default view and layout vs one block per subdomain and the store path, on a "
        "`LocalCluster` of 1 or 2 worker processes (1 thread each); best of the repeats.",
        "",
        "| workers | case | wall [s] | speed-up 1 -> 2 workers | modes | ECM points | load |",
        "|---:|---|---:|---:|---:|---:|---:|",
    ]
    for r in entry["rows"]:
        speed = f"{r['speedup_vs_1_worker']:.2f}" if "speedup_vs_1_worker" in r else ""
        lines.append(f"| {r['workers']} | {r['case']} | {r['wall_s']:.2f} | {speed} | {r.get('n_modes', '')} | "
                     f"{r.get('ecm_points', '') or ''} | {r['load_avg']:.1f} |")
    return lines + [""]


def rom_table(entry: dict) -> list[str]:
    lines = [
        f"## Reduced model vs the built-in solver: `romdask demo` ({entry['date']}, {entry['machine']})",
        "",
        "`python benchmarks/run.py rom`: plate with a hole, two HF training runs (0.004 and 0.008 mm, one cycle),",
        "`reduce` on a LocalCluster (tol_pod = tol_ecm = 1e-6), prediction of 0.006 mm over the given cycles by the",
        "ROM and by the built-in solver. Errors: displacement in the time-space L2 norm; von Mises and p as the",
        "largest pointwise difference over the whole mesh relative to the largest HF value, the ROM fields from the law",
        "replayed along the reduced strain history (`replay_law`) / from Gappy-POD. Online time after the numba",
        "compilation.",
        "",
        "| nodes | cycles | HF training [s] | offline [s] | HF [s] | online [s] | speedup | modes | points / of | "
        "error u | error von Mises replay / Gappy | error p replay / Gappy | replay [s] | max indicator | load |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in entry["rows"]:
        lines.append(
            f"| {r['nodes']:,} | {r['cycles']:g} | {r['hf_training_time']:.1f} | {r['offline_time']:.1f} | "
            f"{r['hf_time']:.1f} | {r['online_time']:.3f} | {r['speedup']:.0f}x | {r['n_modes']} | "
            f"{r['n_points']:,} / {r['n_points_full']:,} | {r['error_displacement']:.1e} | "
            f"{100 * r['error_von_mises']:.2f} % / {100 * r['error_von_mises_gappy']:.2f} % | "
            f"{100 * r['error_p']:.2f} % / {100 * r['error_p_gappy']:.2f} % | {r['replay_time']:.1f} | "
            f"{r['max_indicator']:.2g} | {r['load_avg']:.1f} |"
        )
    return lines + [""]


def rom_calculix_table(entry: dict) -> list[str]:
    lines = [
        f"## Reduced model trained on CalculiX vs CalculiX ({entry['date']}, {entry['machine']})",
        "",
        "`python benchmarks/run.py rom_calculix` (`benchmarks/rom_calculix.py`): two ccx training runs (0.004 and",
        "0.008 mm, one cycle), `reduce` (law replayed), then 0.006 mm by ccx, the built-in solver and the ROM",
        "(online: the median of repeated warm solves where recorded). HF stress: the law replayed on ccx's",
        "displacements (reproduces ccx's stresses to 5e-5 MPa); ROM stress: the law replayed along the reduced",
        "strains at every point (*law replay*: its time, and ccx / (online + replay)) / Gappy-POD.",
        "",
        "| nodes | cycles | ccx solver | ccx [s] | built-in [s] | offline [s] | online [s] | speedup vs ccx | "
        "vs built-in | law replay [s] | ccx / (online + replay) | error u | error von Mises replay / Gappy | "
        "error p replay / Gappy | built-in vs ccx | load |",
        "|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    scaled = [r for r in entry["rows"] if "error_von_mises_gappy_scales" in r]
    for r in entry["rows"]:
        lines.append(
            f"| {r['nodes']:,} | {r['cycles']:g} | {r['ccx_solver']} ({r['ccx_threads']} threads) | "
            f"{r['ccx_wall_s']:.1f} | {r['builtin_wall_s']:.1f} | {r['offline_s']:.1f} | {r['online_wall_s']:.4f} | "
            f"{r['speedup_vs_ccx']:.0f}x | {r['speedup_vs_builtin']:.0f}x | {r['replay_time']:.2f} | "
            f"{r['ccx_wall_s'] / (r['online_wall_s'] + r['replay_time']):.0f}x | {r['error_displacement']:.1e} | "
            f"{100 * r['error_von_mises']:.2f} % / {100 * r['error_von_mises_gappy']:.2f} % | "
            f"{100 * r['error_p']:.2f} % / {100 * r['error_p_gappy']:.2f} % | "
            f"{r['builtin_vs_ccx_displacement']:.1e} | {r['load_avg']:.1f} |"
        )
    if scaled:
        lines += ["", "The same training runs, Gappy bases also from replayed reduced solutions "
                  "(`ReduceOptions.gappy_scales`: the training loadings times each factor, solved by the first model, "
                  "the law replayed at every point; docs/offline.md):", "",
                  "| nodes | gappy_scales | offline [s] | points (plain) | Gappy ranks stress / p | online [s] | "
                  "speedup vs ccx | Gappy fields, every step [s] (plain) | ccx / (online + Gappy fields) (plain) | "
                  "error von Mises Gappy (plain) | error p Gappy (plain) |",
                  "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for r in scaled:
            ranks = r["gappy_ranks_gappy_scales"]
            lines.append(
                f"| {r['nodes']:,} | {', '.join(f'{f:g}' for f in r['gappy_scales'])} | "
                f"{r['offline_gappy_scales_s']:.1f} | {r['n_points_gappy_scales']} ({r['n_points']}) | "
                f"{ranks['stress']} / {ranks.get('p', '-')} | {r['online_wall_gappy_scales_s']:.4f} | "
                f"{r['ccx_wall_s'] / r['online_wall_gappy_scales_s']:.0f}x | "
                f"{r['gappy_fields_gappy_scales_s']:.3f} ({r['gappy_fields_s']:.3f}) | "
                f"{r['ccx_wall_s'] / (r['online_wall_gappy_scales_s'] + r['gappy_fields_gappy_scales_s']):.0f}x "
                f"({r['ccx_wall_s'] / (r['online_wall_s'] + r['gappy_fields_s']):.0f}x) | "
                f"{100 * r['error_von_mises_gappy_scales']:.2f} % ({100 * r['error_von_mises_gappy']:.2f} %) | "
                f"{100 * r['error_p_gappy_scales']:.2f} % ({100 * r['error_p_gappy']:.2f} %) |")
    swept = [r for r in entry["rows"] if r.get("ecm_sweep")]
    if swept:
        lines += ["", "The same training runs and POD, the ECM at looser tolerances (with the point elimination after "
                  "the greedy ECM, docs/offline.md): ECM points per mode = ECM points / (modes + liftings); points = "
                  "ECM + the Gappy bases' Q-DEIM points; online = median of warm solves of the same 0.006 mm case, the "
                  "models' solves interleaved (so the first row's time differs from the table above). The plate is "
                  "displacement-driven: on a traction-loaded part 1e-2 cost 100x the displacement error of 1e-5 "
                  "(docs/offline.md, \"Point elimination\"):",
                  "", "| nodes | tol_ecm | ECM residual | ECM points (per mode) | points | online [s] | speedup vs ccx | "
                  "error u | error von Mises replay / Gappy | error p replay / Gappy |",
                  "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for r in swept:
            fields = r["n_modes"] + 1  # one lifting (the prescribed displacement)
            base = {"tol_ecm": r.get("tol_ecm", 1e-6), "ecm_residual": r["ecm_residual"], "ecm_points": r["ecm_points"],
                    "n_points": r["n_points"], "online_wall_s": r["online_wall_interleaved_s"],
                    "speedup_vs_ccx": r["ccx_wall_s"] / r["online_wall_interleaved_s"],
                    **{k: r[k] for k in ("error_displacement", "error_von_mises", "error_von_mises_gappy", "error_p",
                                         "error_p_gappy")}}
            for m in [base, *r["ecm_sweep"]]:
                lines.append(
                    f"| {r['nodes']:,} | {m['tol_ecm']:.0e} | {m['ecm_residual']:.1e} | {m['ecm_points']} "
                    f"({m['ecm_points'] / fields:.1f}) | {m['n_points']} | {m['online_wall_s']:.4f} | "
                    f"{m['speedup_vs_ccx']:,.0f}x | {m['error_displacement']:.1e} | "
                    f"{100 * m['error_von_mises']:.2f} % / {100 * m['error_von_mises_gappy']:.2f} % | "
                    f"{100 * m['error_p']:.2f} % / {100 * m['error_p_gappy']:.2f} % |")
    return lines + [""]


def training_walls(row: dict) -> str:
    """The training runs' wall times and their solver, e.g. ``ccx 1210 + 1304``."""
    solver = row.get("train_solver", "builtin")
    walls = row["builtin_training_wall_s" if solver == "builtin" else "ccx_training_wall_s"]
    return ("built-in " if solver == "builtin" else "ccx ") + " + ".join(f"{t:.0f}" for t in walls)


def rom_calculix_large_table(entry: dict) -> list[str]:
    lines = [
        f"## Reduced model against CalculiX on a large mesh ({entry['date']}, {entry['machine']})",
        "",
        "`python benchmarks/run.py rom_calculix_large` (`rom_calculix.py --lean`): the plate of the table above with",
        "over 100k nodes, trained on two runs (0.004 and 0.008 mm, one cycle; ccx, or the built-in solver with the same",
        "law), 0.006 mm by ccx and by the ROM (median of warm solves); displacement error against ccx only (the law",
        "replay over the whole mesh is left out). The ROM's cost does not grow with the mesh, ccx's does. Rows",
        "below the first: models of the same POD at looser ECM tolerances (their online times measured interleaved",
        "with the first model's, whose interleaved time is in brackets). Peak RSS: the benchmark process over the",
        "whole run (ccx's results read, the reductions in-process on dask's threads).",
        "",
        "| nodes | dofs | ccx solver | training [s] | offline [s] | ccx [s] | modes | tol_ecm | points | "
        "online [s] | speedup vs ccx | error u | peak RSS [MB] | load |",
        "|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in entry["rows"]:
        interleaved = f" ({r['online_wall_interleaved_s']:.4f})" if "online_wall_interleaved_s" in r else ""
        lines.append(
            f"| {r['nodes']:,} | {r['dofs']:,} | {r['ccx_solver']} ({r['ccx_threads']} threads) | "
            f"{training_walls(r)} | {r['offline_s']:.1f} | "
            f"{r['ccx_wall_s']:.1f} | {r['n_modes']} | {r.get('tol_ecm', 1e-6):g} | {r['n_points']} | "
            f"{r['online_wall_s']:.4f}{interleaved} | "
            f"{r['speedup_vs_ccx']:,.0f}x | {r['error_displacement']:.1e} | {r['peak_rss_mb']:,.0f} | "
            f"{r['load_avg']:.1f} |")
        for m in r.get("ecm_sweep", []):
            lines.append(f"| | | | | {m['offline_s']:.1f} | | | {m['tol_ecm']:g} | {m['n_points']} | "
                         f"{m['online_wall_s']:.4f} | {m['speedup_vs_ccx']:,.0f}x | {m['error_displacement']:.1e} | | |")
    return lines + [""]


def own_deck_table(entry: dict) -> list[str]:
    lines = [
        f"## A user's own CalculiX decks through the command line ({entry['date']}, {entry['machine']})",
        "",
        "`python benchmarks/run.py own_deck`: the session of docs/own-decks.md on `examples/calculix-part/` (715",
        "nodes, 360 C3D10, gmsh-like numbering, cyclic traction on a named surface; trained on 90 and 130 MPa, one",
        "cycle each; predicted: 110 MPa over three cycles, 120 increments). Each command in a fresh process, as a user",
        "runs it (imports and numba cache loading included); online = the reduced solve alone (Python API, warm, best",
        "of 3). Errors of `romdask compare` against ccx on the same deck (stress from its .dat; the ROM's by law",
        "replay): displacement time-space L2; von Mises and p as the largest pointwise difference over all points and",
        "times relative to the largest ccx value.",
        "",
        "| ccx train [s] | ingest [s] | reduce [s] | predict (CLI) [s] | + VTU and .frd [s] | compare [s] | ccx new deck [s] "
        "| online [s] | speedup vs ccx | modes / points | error u | error von Mises (per cycle) | error p | load |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in entry["rows"]:
        cycles = " / ".join(f"{100 * v:.3f}" for v in r["error_von_mises_per_cycle"])
        lines.append(
            f"| {r['ccx_train_90_s']:.1f} + {r['ccx_train_130_s']:.1f} | {r['ingest_s']:.1f} | {r['reduce_s']:.1f} | "
            f"{r['predict_cli_s']:.1f} | {r['predict_cli_full_fields_s']:.1f} | {r['compare_s']:.1f} | "
            f"{r['ccx_new_110_s']:.1f} | {r['online_s']:.4f} | {r['speedup_vs_ccx']:.0f}x | "
            f"{r['n_modes']} / {r['n_points']} | {r['error_displacement']:.1e} | {100 * r['error_von_mises']:.3f} % "
            f"({cycles} %) | {100 * r['error_p']:.2f} % | {r['load_avg']:.1f} |"
        )
    return lines + [""]


def _flights(row: dict) -> str:
    return ", ".join(row.get("training_flights", ("925:1350", "975:1450")))


def _training_ccx(row: dict) -> str:
    """The ccx time of each training flight (keys ccx_train_<...>_s), summed as "a + b"."""
    return " + ".join(f"{v:.0f}" for k, v in row.items() if k.startswith("ccx_train_"))


def thermal_table(entry: dict) -> list[str]:
    lines = [
        f"## Thermomechanics: the spinning blade, CalculiX against the reduced model ({entry['date']}, {entry['machine']})",
        "",
        "`python benchmarks/run.py thermal`: the thermal reference problem ([thermomechanics.md](thermomechanics.md);",
        "quarter blade, C3D8, temperature-dependent viscoplastic law with expansion, centrifugal load, a temperature",
        "field per chord row) as a user's ccx decks (`tests/thermal_deck.py`), through the command line: ccx training",
        "flights (peak temperature C : omega rad/s, one cycle of 40 increments each; `--flights`), `ingest`,",
        "`reduce`, `predict --deck` of the new flight (950 C / 1400 rad/s), ccx on that deck, `compare`. ccx 2.20: 2",
        "threads, `SOLVER=ITERATIVE CHOLESKY`. Online = the reduced solve alone (Python API, warm, best of 3), measured",
        "in the same run as ccx on the same deck. Errors of `romdask compare` (stress from ccx's .dat; the ROM's by",
        "law replay): displacement time-space L2; von Mises and p: largest pointwise difference over all points and",
        "times relative to the largest ccx value.",
        "",
        "| nodes | cycles | training flights [C:rad/s] | ccx train [s] | ingest [s] | reduce [s] | predict (CLI) [s] | compare [s] | ccx new deck [s] "
        "| online [s] | speedup vs ccx | modes / points | error u | error von Mises | error p (max p) | load |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in entry["rows"]:
        lines.append(
            f"| {r['nodes']:,} | {r['cycles']} | {_flights(r)} | {_training_ccx(r)} | "
            f"{r['ingest_s']:.1f} | {r['reduce_s']:.1f} | {r['predict_cli_s']:.1f} | {r['compare_s']:.1f} | "
            f"{r['ccx_new_950_s']:.0f} | {r['online_s']:.3f} | {r['speedup_vs_ccx']:,.0f}x | "
            f"{r['n_modes']} / {r['n_points']} | {r['error_displacement']:.1e} | {100 * r['error_von_mises']:.2f} % | "
            f"{100 * r['error_p']:.2f} % ({r['max_p']:.1e}) | {r['load_avg']:.1f} |"
        )
    return lines + [""]


def cluster_table(entry: dict) -> list[str]:
    st = entry["store"]
    lines = [
        f"## Offline stage on threads, LocalCluster and SLURM jobs ({entry['date']}, {entry['machine']})",
        "",
        f"`python benchmarks/run.py cluster`: `reduce` of a plate store ({st['nodes']:,} nodes, {st['runs']} runs x "
        f"{st['steps']} steps, {st['subdomains']} subdomains) through `romdask.cluster.cluster_client`; SLURM = the "
        "single-node SLURM of `scripts/ci/slurm-up.sh` on this machine, one 1-core worker job each. Start = until the "
        "workers are up; best of the repeats.",
        "",
        "| scheduler | workers | start [s] | reduce [s] | close [s] | load |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in entry["rows"]:
        lines.append(f"| {r['scheduler']} | {r['workers'] or ''} | {r['start_s']:.1f} | {r['reduce_s']:.1f} | "
                     f"{r['close_s']:.1f} | {r['load_avg']:.1f} |")
    return lines + [""]


def local_table(entry: dict) -> list[str]:
    st = entry["store"]
    opts = st["options"]
    clusters = " Clusters: " + "; ".join(
        f"{label}: " + " | ".join(", ".join(m) for m in members) for label, members in entry["clusters"].items())
    lines = [
        f"## One global ROM against a dictionary of local ROMs ({entry['date']}, {entry['machine']})",
        "",
        "`python benchmarks/run.py local` (`benchmarks/local_roms.py`): the quarter plate under tractions that vary in",
        f"kind (`plate_traction_problem`, {st['nodes']:,} nodes, {st['increments_per_cycle']} increments per cycle, one",
        "cycle): a top family (traction along y) and a right family (along x). Training: "
        f"{st['training_runs']} built-in-solver runs, half per family, amplitudes 140-200 MPa, R = -1 and 0, periods",
        f"5-20 s ({st['hf_training_s']:.0f} s of HF); held out: {st['held_out']} other amplitudes / R-ratios / periods",
        f"inside those ranges (HF {st['hf_mean_s']:.1f} s each)"
        + (f"; mixed: {st['mixed']} scenarios with both tractions, one dominant (its family), reported apart." if
           st["mixed"] else "."),
        f"Same `ReduceOptions` for both (tol_pod {opts['tol_pod']:g}, tol_ecm {opts['tol_ecm']:g}, ECM scope "
        f"{st['ecm_scope']}, dask threads): global",
        "= `reduce` on every training run; dictionary = `reduce_local` (k auto, and k = 2 given, one model per",
        "family; offline time includes the dissimilarity) and `ModelDictionary.solve` (choice auto: the",
        "classifier, best of 2 by the error indicator when",
        "ambiguous; the selection is in its time). Online: wall time per scenario after a numba warm-up, best of 2.",
        "Errors by `romdask.demo.compare`: displacement time-space L2; von Mises and p as the largest pointwise",
        "difference relative to the largest HF value (law replay); mean / max over the scenarios. Family cluster =",
        "the model chosen is one trained on the scenario's family; oracle = the model chosen is the local model with",
        f"the lowest von Mises error (every local model solved on every scenario).{clusters}. ECM: "
        f"of {st['ecm_points_full']:,} integration points.",
        "",
        "| scenarios | model | modes | ECM points | offline [s] | online mean (median) [s] | error u mean / max "
        "| error von Mises mean / max | error p mean / max | family cluster | oracle | best of 2 |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in entry["rows"]:
        local = r["model"] == "dictionary"
        lines.append(
            f"| {r['set']} ({r['scenarios']}) | {r['model']}"
            + (f" (k {r['k_requested']}: {r['k']})" if local else "") + f" | {' / '.join(map(str, r['n_modes']))} | "
            f"{' / '.join(map(str, r['n_points']))} | {r['offline_s']:.1f} | "
            f"{r['online_mean_s']:.3f} ({r['online_median_s']:.3f}) | "
            f"{r['error_displacement_mean']:.1e} / {r['error_displacement_max']:.1e} | "
            f"{100 * r['error_von_mises_mean']:.2f} / {100 * r['error_von_mises_max']:.2f} % | "
            f"{100 * r['error_p_mean']:.2f} / {100 * r['error_p_max']:.2f} % | "
            + (f"{100 * r['chosen_accuracy']:.0f} % | {100 * r['oracle_rate']:.0f} % | {r['best_of_2']} |" if local
               else "| | |"))
    lines += [
        "",
        "A-priori criterion of `reduce_local` (`choose_clusters`: POD ranks of the clusters at tol_pod from the Gram",
        "matrix; cost ratio = sum_c w_c n_c^2 / n_global^2, the expected online cost against the global ROM; spread =",
        "mean dissimilarity to the medoid; separation = smallest dissimilarity between two medoids); k auto takes the",
        "lowest cost ratio below 0.7 whose clusters hold >= 2 runs and are >= 0.3 apart (runs of another kind):",
        "",
        "| k | modes per cluster | global modes | runs per cluster | cost ratio | spread | separation | chosen |",
        "|---:|---|---:|---|---:|---:|---:|---|",
    ]
    for r in entry["criterion"]:
        separation = r.get("separation")
        lines.append(f"| {r['k']} | {' / '.join(map(str, r['modes']))} | {r['global_modes']} | "
                     f"{' / '.join(map(str, r['runs']))} | {r['cost_ratio']:.2f} | {r['spread']:.3f} | "
                     f"{'-' if separation is None else f'{separation:.3f}'} | {'yes' if r['chosen'] else ''} |")
    lines += [
        "",
        "Before the separation rule (2026-12-07, same design), k auto took k = 6 (the cost ratio alone keeps falling",
        "with k): clusters of one amplitude each, 13x faster online than the global ROM but von Mises 1.17 / 3.76 %",
        "(mean / max) against 1.41 % max, the chosen local model the best one in 40 % of the held-out scenarios. The",
        "mixed scenarios load both patterns; no local model was trained with both, hence their errors (the",
        "training-envelope warning says so: `romdask predict` prints it); a dictionary predicts the kinds of loading",
        "its clusters were trained on. The same run with the ECM's former correction (an NNLS on the union of the",
        "subdomains' points) did not finish the global model in 10 minutes; that run used one global ECM instead.",
    ]
    return lines + [""]


def adaptive_table(entry: dict) -> list[str]:
    st = entry["store"]
    opts = st["options"]
    names = {"stress": "stress misfit / max(||sigma||, S_sigma) (`result.indicator`)",
             "p": "p misfit / max(||p||, S_p) (`indicators['p']`)", "p_raw": "p misfit / ||p|| (romdask before)"}

    def rho(value):
        return "-" if value is None else f"{value:.3f}"

    def pct(value):
        return "-" if value is None else f"{100 * value:.2f} %"

    spearman = entry["spearman"][0]
    amplitudes = [sc["amplitude"] for sc in entry["scenarios"]]
    r_ratios = sorted({sc["r_ratio"] for sc in entry["scenarios"]})
    periods = sorted({sc["period"] for sc in entry["scenarios"]})
    lines = [
        f"## Error indicator, calibration and adaptive enrichment ({entry['date']}, {entry['machine']})",
        "",
        "`python benchmarks/run.py adaptive` (`benchmarks/adaptive.py`): the plate with a hole (`plate_problem`,",
        f"{st['nodes']:,} nodes, {st['increments_per_cycle']} increments per cycle, built-in solver), a model trained on",
        f"one cycle at {' and '.join(t.removeprefix('amp-') for t in st['training'])} mm (R = -1, 10 s; `reduce` defaults: "
        f"tol_pod {opts['tol_pod']:g}, tol_ecm {opts['tol_ecm']:g}; {st['n_modes']} modes,",
        f"{st['n_points']} points, {st['reduce_s']:.1f} s), {st['held_out']} held-out scenarios (amplitudes "
        f"{min(amplitudes):g}-{max(amplitudes):g} mm, R = {', '.join(f'{v:g}' for v in r_ratios)},",
        f"periods {', '.join(f'{v:g}' for v in periods)} s; HF {st['hf_held_out_mean_s']:.1f} s each). True errors by "
        "`calibration_pairs` (displacement,",
        "von Mises, p: the largest over the run of the per-time errors; "
        f"{st['calibration_pairs_s']:.0f} s for all scenarios); per scenario",
        "the largest value of each indicator.",
        "",
        f"Spearman rank correlation of a scenario's largest indicator with its errors ({spearman['von_mises_scenarios']} "
        f"scenarios; p: the {spearman['p_scenarios']} with plastic flow):",
        "",
        "| indicator | von Mises | displacement | p |",
        "|---|---:|---:|---:|",
    ]
    for r in entry["spearman"]:
        lines.append(f"| {names.get(r['indicator'], r['indicator'])} | {rho(r['von_mises'])} | "
                     f"{rho(r['displacement'])} | {rho(r['p'])} |")
    lines += [
        "",
        f"Calibration (`fit_calibration`, {100 * st['coverage']:g} % nominal): each scenario left out of a calibration",
        "fitted on the others (hyperparameters refitted), the fraction of scenarios whose true final error lies in",
        "the interval predicted for it; and `fit_calibration`'s own report on all scenarios (its leave-one-out",
        f"keeps the full fit's hyperparameters; z its conformal factor). {st['fit_calibration_s']:.1f} s per fit.",
        "",
        "| measure | scenarios | coverage (refitted) | coverage (report) | z | Spearman (report) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in entry["coverage"]:
        report = r["report_coverage"]
        z = "-" if r["z"] is None else f"{r['z']:.2f}"
        refit = r["refit_coverage"]
        missing = r.get("not_predicted", 0)
        refit = ("-" if refit is None else f"{100 * refit:.0f} %") + (f" ({missing} not predicted)" if missing else "")
        lines.append(f"| {r['measure']} | {r['scenarios']} | {refit} | "
                     f"{'-' if report is None else f'{100 * report:.0f} %'} | "
                     f"{z}{'' if r['conformal'] else ' (too few runs)'} | "
                     f"{rho(r['spearman'])} |")
    cal = entry["case_calibration"]
    predicted = cal["predicted_plain"].get("von_mises")
    lines += [
        "",
        f"Adaptive: {st['case'].removeprefix('amp-')} mm (twice the largest training amplitude). Plain = the model; "
        "adaptive = `adaptive_solve` with its",
        f"defaults (no calibration: indicator threshold {st['threshold']:g}, windows of {st['window']} HF increments"
        + (f", doubled up to {st['max_window']} while the model flags again before stepping as far as the last window; the windows in "
           "brackets" if st.get('max_window') else "") + "); "
        "calibrated = a copy of the model",
        f"calibrated on the {cal['runs']} held-out scenarios other than the case (enrich where the predicted von Mises "
        f"error exceeds {100 * st['error_tolerance']:g} %"
        + (f"; on the plain prediction it predicts {pct(predicted[0])} ({pct(predicted[1])}-{pct(predicted[2])}) "
           f"for a true {pct(cal['true_plain'].get('von_mises'))}" if predicted else "") + ");",
        "HF = the built-in solver on the case, no store writes (1 cycle: best of 2). Errors by",
        "`romdask.demo.compare` (displacement time-space L2; von Mises and p largest difference / largest HF",
        "value, law replay). Times in one run, the cost ratio against the HF run of the same length.",
        "",
        "| cycles | computation | error u | error von Mises | error p | enrichments | HF increments | modes / points "
        "| online / HF / enrich / replay [s] | total [s] | / HF run |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in entry["rows"]:
        hf = r["label"] == "HF"
        t = r.get("timings")
        lines.append(
            f"| {r['cycles']} | {r['label']} | "
            + ("| | | | | | |" if hf else
               f"{r['error_displacement']:.1e} | {pct(r['error_von_mises'])} | {pct(r['error_p'])} | "
               f"{r.get('enrichments', '')}{_windows(r)} | {r.get('hf_increments', '')} | {r['n_modes']} / {r['n_points']} | "
               + (f"{t['online']:.1f} / {t['hf']:.1f} / {t['enrich']:.1f} / {t['replay']:.1f} |" if t else "|"))
            + f" {r['s']:.2f} | {r['ratio_to_hf']:.{3 if r['ratio_to_hf'] < 0.1 else 2}f} |")
    lines += [
        "",
        f"Load average {entry['load_avg']:.1f} at the end of the run (2 cores, shared).",
    ]
    return lines + [""]


def threads_table(entry: dict) -> list[str]:
    rows = entry["rows"]
    cell = {(r["model"], r["policy"], r["load"]): r for r in rows}
    models = list(dict.fromkeys(r["model"] for r in rows))

    def ms(model, policy, load):
        r = cell.get((model, policy, load))
        return "-" if r is None else f"{1e3 * r['s']:.0f}"

    def slowdown(model, policy):
        quiet, busy = cell.get((model, policy, "quiet")), cell.get((model, policy, "busy"))
        return "-" if quiet is None or busy is None else f"{busy['s'] / quiet['s']:.1f}x"

    lines = [
        f"## Thread policy: solves on a quiet machine and beside a busy process ({entry['date']}, {entry['machine']})",
        "",
        "`python benchmarks/run.py threads` (`benchmarks/threads.py`): the plate with a hole "
        f"({entry['nodes']:,} nodes, {entry['increments']} increments,",
        "built-in solver), reduced models (2-4 training runs, `reduce` defaults; one without ECM) predicting 0.016 mm,",
        "and the HF solve of that case on that plate and a finer one; median wall time (ms) of repeated solves.",
        "*before*: every library's own threads (BLAS and numba on every core, MKL's spinning 200 ms after each call:",
        "romdask before `romdask.threads`); *policy*: `solver_threads` (one BLAS thread, the laws on one numba thread",
        f"below {entry['parallel_points']} points; HF: one OpenBLAS thread, MKL's own for pardiso without spinning,",
        "`KMP_BLOCKTIME=0`; each HF policy in its own process); *serial* / *parallel*: the",
        "policy with the laws forced on one / every numba thread. *busy*: a second process multiplying matrices on",
        f"every core ({entry['cpu_count']} cores). busy/quiet: the slowdown the issue bounds by 2x.",
        "",
        "| solve | points | modes | before quiet | busy | busy/quiet | policy quiet | busy | busy/quiet | "
        "serial quiet | busy | parallel quiet | busy |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for m in models:
        first = next(r for r in rows if r["model"] == m)
        points = "-" if first["points"] is None else f"{first['points']:,}"
        modes = "-" if first["modes"] is None else str(first["modes"])
        lines.append(f"| {first['solve']} {m} | {points} | {modes} | {ms(m, 'before', 'quiet')} | "
                     f"{ms(m, 'before', 'busy')} | {slowdown(m, 'before')} | {ms(m, 'policy', 'quiet')} | "
                     f"{ms(m, 'policy', 'busy')} | {slowdown(m, 'policy')} | {ms(m, 'serial', 'quiet')} | "
                     f"{ms(m, 'serial', 'busy')} | {ms(m, 'parallel', 'quiet')} | {ms(m, 'parallel', 'busy')} |")
    return lines + [""]


def cyclic_table(entry: dict) -> list[str]:
    rows = entry["rows"]
    first = rows[0]

    def pct(value: float) -> str:
        return f"{100 * value:.2f} %"

    lines = [
        f"## Cyclic extrapolation: trained on one cycle, {first['cycles']} cycles predicted ({entry['date']}, "
        f"{entry['machine']})",
        "",
        "`python benchmarks/run.py cyclic` (`benchmarks/cyclic.py`): the plate with a hole, "
        f"{first['increments'] // first['cycles']} increments per cycle; two HF training runs of ONE cycle",
        f"({' and '.join(f'{a:g}' for a in first['train_amplitudes'])} mm), `reduce` (tol_pod = tol_ecm = 1e-6, "
        "dask's threads), then the reduced model",
        f"predicts {first['cycles']} cycles at {first['predict_amplitude']:g} mm against the HF computation of "
        "those cycles (built-in solver: its wall time;",
        "ccx: 2 threads, ITERATIVE CHOLESKY, its own run). Training HF: its wall time (ccx's two runs side by side "
        "with one thread each where marked *, as a cluster runs independent runs; else one after the other).",
        "End to end = training HF + offline + online (warm-up included);",
        "+ fields: plus the Gappy-POD reconstruction of the last cycle, or plus the law replayed at every point over "
        "every cycle.",
        "Errors on the last cycle: displacement time-space L2; von Mises and p the largest pointwise difference over "
        "the cycle",
        "relative to the largest HF value (ROM: law replay, or Gappy-POD; HF ccx: the law replayed on its "
        "displacements).",
        "",
        "| HF solver | nodes | modes | points | HF [s] (per cycle) | training HF [s] | offline [s] | online [s] | "
        "end to end [s] | HF / end to end | + Gappy | + replay | HF / online | u | von Mises | Gappy | p | Gappy |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['solver']} | {r['nodes']:,} | {r['n_modes']} | {r['n_points']} | {r['hf_s']:.3g} "
            f"({r['hf_cycle_s']:.2g}) | {r['train_hf_s']:.3g}{'*' if r.get('train_side_by_side') else ''} | "
            f"{r['offline_s']:.3g} | {r['online_s']:.2g} | "
            f"{r['end_to_end_s']:.3g} | {r['speedup_end_to_end']:.1f}x | {r['speedup_end_to_end_gappy']:.1f}x | "
            f"{r['speedup_end_to_end_replay']:.1f}x | {r['speedup_online']:,.0f}x | {r['last_displacement']:.1e} | "
            f"{pct(r['last_von_mises'])} | {pct(r['last_von_mises_gappy'])} | {pct(r['last_p'])} | "
            f"{pct(r['last_p_gappy'])} |")
    cycles = [e["cycle"] for e in first["errors"]]
    lines += ["", "Error per cycle, von Mises / p (plot: [benchmarks/cyclic.png](../benchmarks/cyclic.png)):", "",
              "| HF solver | ROM fields | " + " | ".join(f"cycle {c}" for c in cycles) + " |",
              "|---|---|" + "---:|" * len(cycles)]
    for r in rows:
        by = {e["cycle"]: e for e in r["errors"]}
        for how, suffix in (("law replay", ""), ("Gappy-POD", "_gappy")):
            cells = (f"{pct(by[c]['von_mises' + suffix])} / {pct(by[c]['p' + suffix])}" if c in by else "-"
                     for c in cycles)
            lines.append(f"| {r['solver']} | {how} | " + " | ".join(cells) + " |")
    return lines + [""]


def _windows(row: dict) -> str:
    """" (3, 6, 12)": the HF increments of each enrichment of an adaptive row, if recorded."""
    return f" ({', '.join(str(w) for w in row['windows'])})" if row.get("windows") else ""


def render(data: dict, source: Path | None = None) -> str:
    """The Markdown of every case in a results file's ``data`` (the cases it holds)."""
    where = "benchmarks/results.json" if source is None else str(source)
    lines = [
        "# Benchmarks",
        "",
        f"Generated by `python benchmarks/table.py` from `{where}` (written by",
        "`python benchmarks/run.py ...`). Figures are measured, never asserted by the tests.",
        "",
    ]
    if source is None:
        lines += [
            "Rerunning: `python benchmarks/run.py CASE` (cases: `--help`; `all` runs every one, hours) writes",
            "`benchmarks/results.json`, `--results PATH` elsewhere; `python benchmarks/table.py` regenerates this",
            "page (`--results PATH --out FILE` renders another results file). `python benchmarks/run.py all --smoke`",
            "runs every case at a tiny size in a few minutes (results in a temporary file or `--results PATH`,",
            "never `results.json`; tables rendered next to them) and fails when a case gives no rows or a",
            "non-finite figure; CI's slow stage runs it (tests/test_benchmarks_smoke.py). The cases on a",
            "`LocalCluster` start a new cluster for each measured method (its start-up outside the timings):",
            "`client.restart()` could hang for good (distributed 2026.8: a restart about 15 s after the previous",
            "one lost its workers), which made the POD table impossible to re-measure.",
            "",
        ]
    if any(entry.get("smoke") for entry in data.values() if isinstance(entry, dict)):
        lines += ["**Smoke run** (`--smoke`): tiny sizes that show that the benchmarks run; not benchmark figures.", ""]
    if "builtin_solver" in data:
        lines += builtin_solver_table(data["builtin_solver"])
    if "ingest" in data:
        lines += ingest_table(data["ingest"])
    if "calculix_ingest" in data:
        lines += calculix_ingest_table(data["calculix_ingest"])
    if "pod" in data:
        lines += pod_table(data["pod"], data.get("pod_before"))
    if "ecm" in data:
        lines += ecm_table(data["ecm"])
    if "scaling" in data:
        lines += scaling_table(data["scaling"])
    if "cluster" in data:
        lines += cluster_table(data["cluster"])
    if "rom" in data:
        lines += rom_table(data["rom"])
    if "rom_calculix" in data:
        lines += rom_calculix_table(data["rom_calculix"])
    if "rom_calculix_large" in data:
        lines += rom_calculix_large_table(data["rom_calculix_large"])
    if "own_deck" in data:
        lines += own_deck_table(data["own_deck"])
    if "thermal" in data:
        lines += thermal_table(data["thermal"])
    if "local" in data:
        lines += local_table(data["local"])
    if "adaptive" in data:
        lines += adaptive_table(data["adaptive"])
    if "threads" in data:
        lines += threads_table(data["threads"])
    if "cyclic" in data:
        lines += cyclic_table(data["cyclic"])
    if "driver_memory" in data:
        lines += driver_memory_table(data["driver_memory"])
    return "\n".join(lines)


def driver_memory_table(entry: dict) -> list[str]:
    lines = [
        f"## Driver memory of `reduce` against the mesh size ({entry['date']}, {entry['machine']})",
        "",
        "`python benchmarks/run.py driver_memory`: the plate, two built-in-solver runs of one cycle (amplitudes 6 and 4",
        "per mil, the increments below), 4 subdomains; `reduce` (tol_pod 1e-6, tol_ecm 1e-5) from a fresh process on a",
        "LocalCluster of 2 worker processes (1 thread, 4 GB each). Driver peak = that process's VmHWM; reduce's share =",
        "peak minus its memory just before `reduce` (imports, cluster started, store opened); workers = the largest",
        "worker VmHWM. Array sizes for reference: the stress snapshots (`48 n_snap N` bytes, N integration",
        "points), the mode strains (`48 n N`) and the Gappy bases (`8 (6 m_stress + m_p) N`): the stress snapshots",
        "are not gathered on the driver (their Gram matrices are summed in per-subdomain tasks, the bases formed",
        "there); the modes, mode strains and Gappy bases still are (the model's full bases), each held once: joined",
        "block by block into one array (a worker's block fetched and released one at a time), the Gappy bases made",
        "orthonormal in place (Cholesky QR twice) and their Q-DEIM points chosen by a tournament over blocks of at",
        "most 16 MB. Above those arrays, the driver's share holds memory freed but kept by the C allocator and",
        "dask's buffers.",
        *([entry["note"][0].upper() + entry["note"][1:] + "."] if entry.get("note") else []),
        "",
        "| nodes | dofs | points | snapshots | modes | Gappy ranks stress / p | stress snapshots [MB] | mode strains [MB] "
        "| Gappy bases [MB] | reduce [s] | driver peak [MB] | reduce's share [MB] | workers' peak [MB] | load |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in entry["rows"]:
        ranks = r["gappy_ranks"]
        lines.append(
            f"| {r['nodes']:,} | {r['dofs']:,} | {r['points']:,} | {r['snapshots']} | {r['modes']} | "
            f"{ranks['stress']} / {ranks.get('p', '-')} | {r['stress_snapshots_mb']:,.0f} | {r['mode_strains_mb']:,.0f} | "
            f"{r['gappy_bases_mb']:,.0f} | {r['reduce_s']:.1f} | {r['peak_mb']:,.0f} | {r['reduce_peak_mb']:,.0f} | "
            f"{r['worker_peak_mb']:,.0f} | {r['load_avg']:.1f} |")
    befores = entry.get("before") or []
    for before in [befores] if isinstance(befores, dict) else befores:
        what = before.get("what", "the stress snapshots gathered")
        lines += ["", f"Before (commit {before['commit']}: {what}; {before['date']}): " + "; ".join(
            f"{r['nodes']:,} nodes: driver peak {r['peak_mb']:,.0f} MB, reduce's share {r['reduce_peak_mb']:,.0f} MB, "
            f"workers {r['worker_peak_mb']:,.0f} MB, {r['reduce_s']:.1f} s" for r in before["rows"]) + "."]
    return lines + [""]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--results", type=Path, default=HERE / "results.json",
                        help="results file (default benchmarks/results.json)")
    parser.add_argument("--out", type=Path, default=None,
                        help="Markdown file to write (default docs/benchmarks.md, only from benchmarks/results.json)")
    args = parser.parse_args(argv)
    results = args.results.resolve()
    default = results == (HERE / "results.json").resolve()
    if args.out is None and not default:
        parser.error("--out is needed with another --results (docs/benchmarks.md shows benchmarks/results.json only)")
    out = DOC if args.out is None else args.out
    out.write_text(render(json.loads(results.read_text()), None if default else results))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
