"""Regenerate docs/benchmarks.md from benchmarks/results.json."""

from __future__ import annotations

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


def pod_table(entry: dict) -> list[str]:
    st, npy = entry["store"], entry["numpy"]
    lines = [
        f"## POD of a {st['payload_gb']:.1f} GB snapshot store against one read pass ({entry['date']}, {entry['machine']})",
        "",
        f"`python benchmarks/run.py pod`: synthetic uncompressed store, `box(({round(st['nodes'] ** (1 / 3)) - 1},) * 3)` C3D8,",
        f"{st['nodes']:,} nodes, {st['dofs']:,} dofs, {st['runs']} runs x {st['steps']} frames = {st['snapshots']} snapshots,",
        f"{st['subdomains']} subdomains ({st['store_gb']:.2f} GB on disk, in the page cache); displacement = sum of",
        f"{st['synthetic_modes']} smooth modes with amplitudes 1 to 1e-5 x time coefficients + 1e-9 noise. `LocalCluster`,",
        "1 thread per worker, 3 GB memory limit, workers restarted before each method (peak = max `ru_maxrss` over",
        f"the workers for that method); best of {st['repeats']}. Read = one pass over",
        "`open_snapshots(path).displacement.data` to a null `da.store` target. POD = `pod(U, method=..., tol=1e-6)`",
        "up to the singular values + lazy modes; modes = computing those modes to a null target. Throughput = payload",
        "bytes / time; \"of read\" = read-pass time / method time (the goal is >= 50 %). sv error = max relative error",
        "of the singular values with s_i/s_0 > 1e-6 against `np.linalg.svd` (no figure for L2: another product).",
        "",
        "| workers | method | POD [s] | POD [GB/s] | of read | + modes [s] | total [GB/s] | total of read "
        "| speed-up 1 -> 2 workers | peak per worker [MB] | sv error vs numpy | vs numpy SVD |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in entry["rows"]:
        name = "read pass" if r["method"] == "read" else r["method"] + (" (L2)" if r["product"] == "l2" else "")
        speed = f"{r['speedup_vs_1_worker']:.2f}" if "speedup_vs_1_worker" in r else ""
        if r["method"] == "read":
            lines.append(f"| {r['workers']} | {name} | {r['time_s']:.2f} | {r['gb_s']:.2f} | 100 % | | | | {speed} | "
                         f"{r['peak_worker_mb']:.0f} | | |")
            continue
        err = f"{r['sv_max_rel_err_kept']:.1e}" if "sv_max_rel_err_kept" in r else ""
        vs = f"{r['speedup_vs_numpy_svd']:.1f}x faster" if "speedup_vs_numpy_svd" in r else ""
        lines.append(
            f"| {r['workers']} | {name} | {r['time_s']:.2f} | {r['gb_s']:.2f} | {100 * r['fraction_of_read']:.0f} % | "
            f"{r['modes_s']:.2f} | {r['total_gb_s']:.2f} | {100 * r['total_fraction_of_read']:.0f} % | {speed} | "
            f"{r['peak_worker_mb']:.0f} | {err} | {vs} |"
        )
    lines += [
        "",
        f"numpy in memory (this process, BLAS on both cores): loading the matrix {npy['load_s']:.1f} s; "
        f"`np.linalg.svd(X, full_matrices=False)` {npy['svd_s']:.1f} s ({npy['gb_s']:.2f} GB/s, "
        f"{100 * npy['fraction_of_read_2_workers']:.0f} % of the 2-worker read pass); peak RSS {npy['peak_rss_mb']:,.0f} MB; "
        f"{npy['n_sv_above_1e-6']} singular values with s_i/s_0 > 1e-6.",
        "",
    ]
    return lines


def main() -> None:
    data = json.loads((HERE / "results.json").read_text())
    lines = [
        "# Benchmarks",
        "",
        "Generated by `python benchmarks/table.py` from `benchmarks/results.json` (written by",
        "`python benchmarks/run.py ...`). Figures are measured, never asserted by the tests.",
        "",
    ]
    if "builtin_solver" in data:
        lines += builtin_solver_table(data["builtin_solver"])
    if "ingest" in data:
        lines += ingest_table(data["ingest"])
    if "calculix_ingest" in data:
        lines += calculix_ingest_table(data["calculix_ingest"])
    if "pod" in data:
        lines += pod_table(data["pod"])
    DOC.write_text("\n".join(lines))
    print(f"wrote {DOC}")


if __name__ == "__main__":
    main()
