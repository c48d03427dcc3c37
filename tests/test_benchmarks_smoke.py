"""The benchmarks run to the end: ``python benchmarks/run.py all --smoke`` (issue 18 item 10).

Every case of benchmarks/run.py at its tiny ``--smoke`` size, in a subprocess from the repository
root as on a fresh clone (benchmarks/ is not a package: the runner is a script). The runner already
fails when a case gives no rows or a non-finite figure; this test checks the exit status, the rows
of every case and the tables that benchmarks/table.py renders from them. No figure is compared with
anything: they are smoke, not benchmark figures, and benchmarks/results.json must stay untouched.

Slow (a few minutes on 2 cores: about a dozen LocalClusters, ccx runs, numba loading in every fresh
process); CI runs it in its second stage (``-m slow``). Without ccx the cases that need it are left
out (as the suite's ccx tests are skipped).
"""

import hashlib
import json
import math
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
CASES = ("builtin_solver", "ingest", "calculix_ingest", "pod", "ecm", "scaling", "cluster", "rom", "rom_calculix",
         "own_deck", "thermal", "local", "adaptive", "threads", "cyclic")
NEEDS_CCX = ("calculix_ingest", "rom_calculix", "own_deck", "thermal", "cyclic")
#: the heading of each case's table in benchmarks/table.py
HEADINGS = {"builtin_solver": "## Built-in solver", "ingest": "## Ingest of solver-made", "calculix_ingest":
            "## Ingest of CalculiX results", "pod": "## POD of a", "ecm": "## ECM vs tolerance", "scaling":
            "## Offline stage on 1 and 2 workers", "cluster": "## Offline stage on threads", "rom":
            "## Reduced model vs the built-in solver", "rom_calculix": "## Reduced model trained on CalculiX",
            "own_deck": "## A user's own CalculiX decks", "thermal": "## Thermomechanics",
            "local": "## One global ROM against a dictionary of local ROMs",
            "adaptive": "## Error indicator, calibration and adaptive enrichment",
            "threads": "## Thread policy", "cyclic": "## Cyclic extrapolation"}


def _numbers(value):
    if isinstance(value, dict):
        for v in value.values():
            yield from _numbers(v)
    elif isinstance(value, list):
        for v in value:
            yield from _numbers(v)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        yield float(value)


def test_every_benchmark_case_runs_to_the_end_at_smoke_size(tmp_path):
    cases = CASES if shutil.which("ccx") else tuple(c for c in CASES if c not in NEEDS_CCX)
    published = ROOT / "benchmarks" / "results.json"
    before = hashlib.sha256(published.read_bytes()).hexdigest() if published.exists() else None
    results = tmp_path / "smoke.json"
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "benchmarks/run.py", *cases, "--smoke", "--results", str(results)],
                          check=False, cwd=ROOT, capture_output=True, text=True, timeout=1800)
    wall = time.perf_counter() - t0
    assert proc.returncode == 0, f"exit {proc.returncode} after {wall:.0f} s:\n{proc.stderr[-6000:]}"

    data = json.loads(results.read_text())
    assert set(data) == set(cases)
    for name in cases:
        entry = data[name]
        assert entry["smoke"] is True
        assert entry["rows"], name
        for row in entry["rows"]:
            figures = list(_numbers(row))
            assert figures, (name, row)
        assert all(math.isfinite(v) for v in _numbers(entry)), name
    if "pod" in cases:  # 2 read passes + 4 methods, on 2 and on 1 worker(s): a fresh cluster each
        assert len(data["pod"]["rows"]) == 12

    tables = results.with_suffix(".md").read_text()
    assert "Smoke run" in tables
    for name in cases:
        assert HEADINGS[name] in tables, name
    assert not re.search(r"\b(nan|inf)\b", tables, re.IGNORECASE)

    after = hashlib.sha256(published.read_bytes()).hexdigest() if published.exists() else None
    assert after == before, "a smoke run must not write benchmarks/results.json"
    print(f"benchmarks smoke run: {wall:.0f} s; per case: "
          + ", ".join(f"{name} {data[name]['run_wall_s']:.0f} s" for name in cases))
