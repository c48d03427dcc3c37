"""Ingest into a snapshot store: parallel, resumable, validated (romdask.store.ingest)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import zarr

from romdask.io import READERS, read_run
from romdask.store import SnapshotStore, group_sources, ingest, open_snapshots
from romdask.store.layout import ip_layout
from test_store import reference_fields, shuffled, store_digest, synthetic_run, two_block_mesh

HERE = Path(__file__).resolve().parent
TESTS = HERE.parent


def _runs(mesh, n=3, n_steps=12):
    return [synthetic_run(shuffled(mesh, seed=i), f"r{i}", n_steps + i, seed=i) for i in range(n)]


def test_parallel_ingest_then_rerun_skips_everything(tmp_path):
    mesh = two_block_mesh()
    path = tmp_path / "s.zarr"
    status = ingest(_runs(mesh), path, n_subdomains=3)
    assert status == {"r0": "written", "r1": "written", "r2": "written"}
    digest = store_digest(path)
    assert ingest(_runs(mesh), path) == {"r0": "skipped", "r1": "skipped", "r2": "skipped"}
    assert store_digest(path) == digest
    ds = open_snapshots(path)
    assert ds.displacement.chunks[0] == (12, 13, 14)
    assert len(ds.displacement.chunks[1]) == 3
    u = ds.displacement.values[12:25]  # r1
    ref, _ = reference_fields(mesh, 13, 1)
    comp = np.tile([0, 1, 2], mesh.n_nodes)
    assert np.array_equal(u, ref[:, ds.node_id.values, comp])
    with pytest.raises(ValueError, match="has 3 subdomains, not 2"):
        ingest(_runs(mesh), path, n_subdomains=2)


def test_ingest_under_a_distributed_client(tmp_path):
    import distributed  # a core dependency: its absence must fail
    mesh = two_block_mesh()
    with distributed.Client(processes=False, n_workers=1, threads_per_worker=2, dashboard_address=None):
        status = ingest(_runs(mesh, 2), tmp_path / "d.zarr", n_subdomains=2)
        ds = open_snapshots(tmp_path / "d.zarr")
        total = float(ds.displacement.sum().compute())  # the view's graph runs on the cluster
    assert set(status.values()) == {"written"}
    assert total == pytest.approx(float(ds.displacement.values.sum()), rel=1e-12)
    ingest(_runs(mesh, 2), tmp_path / "t.zarr", n_subdomains=2)
    assert store_digest(tmp_path / "d.zarr") == store_digest(tmp_path / "t.zarr")


def test_killed_ingest_then_rerun_gives_the_same_store(tmp_path):
    script = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(HERE)!r})
        from test_store_ingest import _runs
        from test_store import two_block_mesh
        from romdask.store import ingest
        ingest(_runs(two_block_mesh(), 3, 40), sys.argv[1], n_subdomains=2)
        """
    )
    killed = tmp_path / "killed.zarr"
    env = dict(os.environ, ROMDASK_STORE_TEST_SLEEP="0.4")
    proc = subprocess.Popen([sys.executable, "-c", script, str(killed)], env=env)
    try:
        deadline = time.monotonic() + 60
        half_written = False
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                runs = zarr.open_group(str(killed), mode="r")["runs"]
                for name in runs.group_keys():
                    if runs[name].attrs.get("status") == "incomplete" and runs[f"{name}/displacement/s0000"].shape[0] >= 8:
                        half_written = True
            except Exception:  # noqa: BLE001 - the store is being created
                pass
            if half_written:
                break
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    assert half_written, "the ingest ended before a run was half written"
    assert proc.returncode == -signal.SIGKILL
    statuses = [r["status"] for r in SnapshotStore.open(killed).runs().values()]
    assert "incomplete" in statuses
    status = ingest(_runs(two_block_mesh(), 3, 40), killed, n_subdomains=2)
    assert "written" in status.values()
    one_go = tmp_path / "one_go.zarr"
    ingest(_runs(two_block_mesh(), 3, 40), one_go, n_subdomains=2)
    assert store_digest(killed) == store_digest(one_go)


def test_mesh_mismatch_names_the_file_and_writes_nothing_for_that_run(tmp_path):
    mesh = two_block_mesh()
    path = tmp_path / "s.zarr"
    ingest(_runs(mesh, 1), path, n_subdomains=2)
    before = store_digest(path)
    other = two_block_mesh((4, 3, 3))
    bad_file = tmp_path / "other.frd"
    bad_file.write_text("x")
    bad = synthetic_run(other, "bad", 4, 9, sources=(bad_file,))
    with pytest.raises(ValueError, match=r"other\.frd \(run 'bad'\): the mesh differs.*nodes instead of"):
        ingest([bad], path)
    assert store_digest(path) == before
    # with good runs alongside: those are written, the bad one is reported
    with pytest.raises(ValueError, match=r"other\.frd \(run 'bad'\)") as info:
        ingest([bad, synthetic_run(mesh, "good", 3, 5)], path)
    assert info.value.__notes__ == ["the other 1 run(s) were ingested"]
    with pytest.raises(ValueError, match=r"2 of 3 runs failed.*\n- bad: .*other\.frd.*\n- nan: .*step 1"):
        ingest([bad, synthetic_run(mesh, "nan", 3, 5, nan_at=1), synthetic_run(mesh, "good2", 3, 5)], path)
    runs = SnapshotStore.open(path).runs()
    assert "bad" not in runs and runs["good"]["status"] == "complete" and runs["good2"]["status"] == "complete"
    assert runs["nan"]["status"] == "incomplete"


def test_nan_in_a_frame_then_fixed_rerun(tmp_path):
    mesh = two_block_mesh()
    path = tmp_path / "s.zarr"
    with pytest.raises(ValueError, match=r"field 'displacement' at step 10.*incomplete"):
        ingest([synthetic_run(mesh, "a", 12, 1, nan_at=10), synthetic_run(mesh, "b", 12, 2)][:1], path, n_subdomains=2)
    assert SnapshotStore.open(path).runs()["a"]["status"] == "incomplete"
    assert ingest([synthetic_run(mesh, "a", 12, 1)], path) == {"a": "written"}
    fresh = tmp_path / "fresh.zarr"
    ingest([synthetic_run(mesh, "a", 12, 1)], fresh, n_subdomains=2)
    assert store_digest(path) == store_digest(fresh)


def test_changed_sources_need_overwrite(tmp_path):
    mesh = two_block_mesh()
    src = tmp_path / "a.out"
    src.write_text("version 1")
    path = tmp_path / "s.zarr"
    ingest([synthetic_run(mesh, "a", 3, 1, sources=(src,))], path, n_subdomains=2)
    attrs = SnapshotStore.open(path).runs()["a"]
    assert attrs["sources"][0]["size"] == 9 and len(attrs["sources"][0]["sha256"]) == 64
    assert ingest([synthetic_run(mesh, "a", 3, 1, sources=(src,))], path) == {"a": "skipped"}
    src.write_text("version 2")
    with pytest.raises(ValueError, match="other sources.*overwrite=True"):
        ingest([synthetic_run(mesh, "a", 3, 1, sources=(src,))], path)
    assert ingest([synthetic_run(mesh, "a", 3, 7, sources=(src,))], path, overwrite=True) == {"a": "written"}


def test_sources_grouped_into_runs(tmp_path):
    for name in ("c1.inp", "c1.frd", "c1.dat", "c2.frd", "v.xdmf", "z.ut"):
        (tmp_path / name).write_text("")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "c1.frd").write_text("")
    groups = group_sources(sorted(tmp_path.glob("*.*")))
    assert [(n, sorted(p.name for p in ps)) for n, ps in groups] == [
        ("c1", ["c1.dat", "c1.frd", "c1.inp"]), ("c2", ["c2.frd"]), ("v", ["v.xdmf"]), ("z", ["z.ut"])]
    with pytest.raises(ValueError, match=r"run name\(s\) \['c1'\]"):
        group_sources([tmp_path / "c1.frd", tmp_path / "sub" / "c1.frd"])
    with pytest.raises(FileNotFoundError, match="missing.frd"):
        group_sources([tmp_path / "missing.frd"])


def test_read_run_dispatches_by_suffix(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match=r"no reader for files ending in '\.csv'; supported: \.frd, \.inp"):
        read_run(tmp_path / "x.csv")
    assert READERS[".frd"] == ("romdask.io.calculix", "read_calculix")
    assert READERS[".pvd"] == ("romdask.io.meshio_series", "read_pvd_series")
    assert READERS[".ut"] == ("romdask.io.zset", "read_zset")
    monkeypatch.setitem(READERS, ".frd", ("test_cli_store", "read_npz_run"))
    seen = {}
    import test_cli_store

    monkeypatch.setattr(test_cli_store, "read_npz_run", lambda path, **kw: seen.update(path=path, kw=kw) or "run")
    assert read_run(tmp_path / "job.FRD", option=1) == "run"
    assert seen == {"path": tmp_path / "job.FRD", "kw": {"option": 1}}


def test_interrupted_store_creation_is_redone(tmp_path):
    mesh = two_block_mesh()
    path = tmp_path / "s.zarr"
    ingest(_runs(mesh, 1), tmp_path / "ref.zarr", n_subdomains=2)
    from romdask.store import create_store

    create_store(path, mesh, n_subdomains=2)
    zarr.open_group(str(path))["mesh"].attrs["complete"] = False  # as if killed while writing the mesh
    with pytest.raises(ValueError, match="mesh group is incomplete"):
        SnapshotStore.open(path)
    ingest(_runs(mesh, 1), path, n_subdomains=2)
    assert store_digest(path) == store_digest(tmp_path / "ref.zarr")


# ---- end to end with the committed readers (romdask.io.calculix, romdask.io.zset) ----------

CCX_DATA = TESTS / "io" / "data" / "calculix"


def test_calculix_files_end_to_end(tmp_path):
    from romdask.io.calculix import read_calculix

    for name in ("c3d10.inp", "c3d10.dat", "c3d10_nodes.inc"):
        (tmp_path / name).write_bytes((CCX_DATA / name).read_bytes())
    (tmp_path / "c3d10.frd").write_bytes((CCX_DATA / "c3d10_float64.frd").read_bytes())
    files = [tmp_path / n for n in ("c3d10.frd", "c3d10.inp", "c3d10.dat")]
    path = tmp_path / "s.zarr"
    assert ingest(files, path, n_subdomains=2) == {"c3d10": "written"}
    assert ingest(files, path) == {"c3d10": "skipped"}
    run = read_calculix(tmp_path / "c3d10.frd")
    ds = open_snapshots(path)
    assert ds.attrs["runs"] == ["c3d10"] and ds.sizes["snapshot"] == run.n_steps
    sources = SnapshotStore.open(path).runs()["c3d10"]["sources"]
    assert sorted(s["name"] for s in sources) == ["c3d10.dat", "c3d10.frd", "c3d10.inp"]
    rows = run.mesh.node_index(ds.node_id.values[::3])
    _, _, offset = ip_layout(run.mesh)
    points = offset[run.mesh.element_index(ds.element_id.values)] + ds.local_point.values
    for k, frame in enumerate(run.frames()):
        assert np.array_equal(ds.displacement.values[k].reshape(-1, 3), frame.data["displacement"][rows])
        for f in set(run.fields) - {"displacement"}:
            assert np.array_equal(ds[f].values[k], frame.data[f][points], equal_nan=True)
    # a changed source file: refused unless overwrite
    (tmp_path / "c3d10.dat").write_bytes((CCX_DATA / "c3d10.dat").read_bytes() + b"\n")
    with pytest.raises(ValueError, match="other sources"):
        ingest(files, path)


def test_decomposed_zset_run_keeps_the_solver_partition(tmp_path):
    sys.path.insert(0, str(TESTS / "io"))
    try:
        from test_zset import _decomposed
    finally:
        sys.path.remove(str(TESTS / "io"))
    from romdask.io.zset import read_zset

    _decomposed(tmp_path)
    files = sorted(tmp_path.glob("c-0*.ut"))
    assert [n for n, _ in group_sources(files)] == ["c"]
    path = tmp_path / "s.zarr"
    assert ingest(files, path) == {"c": "written"}  # n_subdomains from Run.partition
    run = read_zset(tmp_path / "c.ut")
    store = SnapshotStore.open(path)
    lay = store.layout
    assert store.n_subdomains == 2
    expected = run.partition.node_part[run.mesh.node_index(lay.mesh.node_ids)]
    assert np.array_equal(lay.node_subdomain, expected)
    ds = open_snapshots(path)
    rows = run.mesh.node_index(ds.node_id.values[::3])
    for k, frame in enumerate(run.frames()):
        assert np.array_equal(ds.displacement.values[k].reshape(-1, 3), frame.data["displacement"][rows])
