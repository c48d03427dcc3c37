"""Snapshot store: layout, writer protocol, lazy views (romdask.store)."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import zarr

from romdask.fem.mesh import CellBlock, Mesh
from romdask.io.run import FieldSpec, Frame, Run
from romdask.problems.meshing import box
from romdask.store import SnapshotStore, create_store, open_run, open_snapshots
from romdask.store.layout import ip_layout

STRESS = FieldSpec("ip", ("xx", "yy", "zz", "xy", "xz", "yz"))
DISP = FieldSpec("node", ("x", "y", "z"))


# ---- helpers (also used by test_store_ingest.py and test_cli_store.py) ----------------------


def two_block_mesh(shape=(4, 3, 2)) -> Mesh:
    """A hex box split into two C3D8 blocks, with non-trivial node and element ids."""
    m = box(shape, lengths=(4.0, 3.0, 2.0))
    conn = m.blocks[0].connectivity
    half = len(conn) // 2
    ids = 500 + 7 * np.arange(len(conn))
    blocks = (CellBlock("C3D8", conn[:half], ids[:half]), CellBlock("C3D8", conn[half:], ids[half:]))
    return Mesh(m.nodes, blocks, 1000 + 3 * np.arange(m.n_nodes), {"bottom": np.flatnonzero(m.nodes[:, 2] == 0)},
                {"first": np.arange(3)}, {"side": np.array([[0, 0], [1, 2]])})


def shuffled(mesh: Mesh, seed: int = 1) -> Mesh:
    """The same mesh (same ids, coordinates, cells) in another node and element numbering."""
    rng = np.random.default_rng(seed)
    offsets = mesh.block_offsets
    el = np.concatenate([offsets[k] + rng.permutation(len(b)) for k, b in enumerate(mesh.blocks)])
    return mesh.renumbered(rng.permutation(mesh.n_nodes), el)


def reference_fields(mesh: Mesh, n_steps: int, seed: int):
    """Values keyed by solver ids: u[step, node_id, c], s[step, element_id, point, c]."""
    rng = np.random.default_rng(seed)
    u = rng.standard_normal((n_steps, int(mesh.node_ids.max()) + 1, 3))
    s = rng.standard_normal((n_steps, int(mesh.element_ids.max()) + 1, 8, 6))
    return u, s


def synthetic_run(mesh: Mesh, name: str, n_steps: int = 10, seed: int = 0, *, stress: bool = True,
                  nan_at: int | None = None, sources=()) -> Run:
    """A Run with frames made from :func:`reference_fields` in ``mesh``'s numbering."""
    u, s = reference_fields(mesh, n_steps, seed)
    element, local, _ = ip_layout(mesh)
    eids = mesh.element_ids[element]
    times = 0.5 * np.arange(n_steps)
    fields = {"displacement": DISP, **({"stress": STRESS} if stress else {})}

    def frames():
        for k in range(n_steps):
            data = {"displacement": u[k, mesh.node_ids].copy()}
            if stress:
                data["stress"] = s[k, eids, local]
            if nan_at == k:
                data["displacement"][3, 1] = np.nan
            yield Frame(k, times[k], data)

    return Run(name, mesh, times, fields, frames, solver="synthetic", solver_version="1",
               sources=sources, metadata={"load": f"seed {seed}"})


def store_digest(path) -> str:
    """A hash of every array (data and metadata) and attribute of a zarr store."""
    root = zarr.open_group(str(path), mode="r")
    h = hashlib.sha256(json.dumps(dict(root.attrs), sort_keys=True).encode())
    for name, obj in sorted(root.members(max_depth=None), key=lambda x: x[0]):
        h.update(name.encode())
        h.update(json.dumps(obj.metadata.to_dict(), sort_keys=True, default=str).encode())
        if isinstance(obj, zarr.Array):
            h.update(np.ascontiguousarray(obj[...]).tobytes())
    return h.hexdigest()



# ---- tests --------------------------------------------------------------------------------


@pytest.mark.parametrize("n_subdomains", [1, 2, 4])
def test_round_trip_exact_in_original_order_with_one_block_per_subdomain(tmp_path, n_subdomains, raise_on_compute):
    mesh = two_block_mesh()
    path = tmp_path / "s.zarr"
    store = create_store(path, mesh, n_subdomains=n_subdomains)
    run = synthetic_run(shuffled(mesh, seed=n_subdomains), "a", n_steps=11, seed=3)  # 11: not a multiple of 8
    assert store.ingest_run(run) == "written"
    with raise_on_compute():
        ds = open_snapshots(path)
    offsets = np.asarray(ds.attrs["dof_offsets"])
    assert len(offsets) == n_subdomains + 1
    assert ds.displacement.chunks == ((11,), tuple(np.diff(offsets)))
    assert ds.displacement.data.npartitions == n_subdomains
    # the subdomain coordinate agrees with the chunks
    sub = ds.subdomain.values
    for k in range(n_subdomains):
        assert np.all(sub[offsets[k] : offsets[k + 1]] == k)
    u_ref, s_ref = reference_fields(mesh, 11, 3)
    u = ds.displacement.values
    comp = {"x": 0, "y": 1, "z": 2}
    expected = u_ref[:, ds.node_id.values, [comp[c] for c in ds.component.values]]
    assert u.dtype == np.float64 and np.array_equal(u, expected)  # bit-exact
    # stress at the same element id / local point
    s = ds.stress.values
    assert np.array_equal(s, s_ref[:, ds.element_id.values, ds.local_point.values])
    assert ds.stress.chunks[1] == tuple(np.diff(ds.attrs["ip_offsets"]))
    # back to the original node order through node_id
    node_ids = ds.node_id.values.reshape(-1, 3)[:, 0]
    original = np.empty_like(u).reshape(11, -1, 3)
    original[:, mesh.node_index(node_ids)] = u.reshape(11, -1, 3)
    assert np.array_equal(original, u_ref[:, mesh.node_ids])
    assert list(ds.run.values) == ["a"] * 11 and np.array_equal(ds.time.values, 0.5 * np.arange(11))


def test_ip_points_of_a_subdomain_span_blocks(tmp_path):
    mesh = two_block_mesh((6, 4, 2))
    store = create_store(tmp_path / "s.zarr", mesh, n_subdomains=3)
    lay = store.layout
    blocks_per_subdomain = [
        np.unique(np.searchsorted(lay.mesh.block_offsets, lay.ip_element[lay.points_of(k)], side="right"))
        for k in range(3)
    ]
    assert any(len(b) > 1 for b in blocks_per_subdomain)  # the case where points are not contiguous
    assert np.array_equal(np.sort(lay.ip_points), np.arange(lay.n_points))
    assert np.all(lay.element_subdomain[lay.ip_element[lay.points_of(1)]] == 1)


def test_builtin_solver_writes_through_the_writer_protocol(tmp_path):
    from romdask.hifi import solve
    from romdask.problems.plate import plate_problem

    problem = plate_problem(n=3, n_cycles=0.5)
    fields = ("displacement", "stress", "state")
    ref = solve(problem, fields=fields)
    store = create_store(tmp_path / "s.zarr", problem.mesh, n_subdomains=2)
    script = tmp_path / "make_plate.py"
    script.write_text("plate_problem(n=3, n_cycles=0.5)\n")
    writer = store.writer("plate", mesh=problem.mesh, times=problem.times, fields=fields, sources=[script],
                          solver="romdask-builtin", metadata=problem.metadata, allow_nan=("state",))
    solve(problem, writer=writer, fields=fields)
    ds = open_run(tmp_path / "s.zarr", "plate")
    assert ds.attrs["status"] == "complete" and ds.attrs["solver"] == "romdask-builtin"
    assert ds.attrs["sources"][0]["name"] == "make_plate.py" and ds.attrs["sources"][0]["size"] == 33
    assert ds.attrs["metadata"]["amplitude"] == problem.metadata["amplitude"]
    u = ds.displacement.values.reshape(len(problem.times), -1, 3)
    nodes = problem.mesh.node_index(ds.node_id.values[::3])
    assert np.array_equal(u, ref.displacement.reshape(len(problem.times), -1, 3)[:, nodes])
    # integration points: store point -> (element id, local point) -> problem point
    _, _, offset = ip_layout(problem.mesh)
    points = offset[problem.mesh.element_index(ds.element_id.values)] + ds.local_point.values
    assert np.array_equal(ds.stress.values, ref.fields["stress"][:, points])
    assert np.array_equal(ds.state.values, ref.fields["state"][:, points], equal_nan=True)
    assert ds.stress.values.std() > 0


def test_building_views_computes_nothing(tmp_path, raise_on_compute):
    mesh = two_block_mesh()
    store = create_store(tmp_path / "s.zarr", mesh, n_subdomains=2)
    store.ingest_run(synthetic_run(mesh, "a", 9, 1))
    store.ingest_run(synthetic_run(mesh, "b", 5, 2))
    with raise_on_compute():
        ds = open_snapshots(tmp_path / "s.zarr")
        one = open_run(tmp_path / "s.zarr", "b")
        total = ds.displacement.sum()  # still lazy
        with pytest.raises(RuntimeError, match="computed something"):
            total.values
    assert ds.displacement.chunks[0] == (9, 5)
    assert one.displacement.dims == ("step", "dof") and one.stress.dims == ("step", "ip", "component_stress")
    assert np.array_equal(ds.displacement.values[9:], one.displacement.values)


def test_incomplete_runs_are_invisible(tmp_path):
    mesh = two_block_mesh()
    path = tmp_path / "s.zarr"
    store = create_store(path, mesh, n_subdomains=2)
    store.ingest_run(synthetic_run(mesh, "done", 4, 1))
    writer = store.writer("half", mesh=mesh, times=0.5 * np.arange(20), fields={"displacement": DISP})
    u, _ = reference_fields(mesh, 20, 0)
    for k in range(10):  # one flush reaches the disk (20 times: 3 chunks of 7 frames)
        writer.write(k, 0.5 * k, {"displacement": u[k, mesh.node_ids]})
    assert zarr.open_group(str(path))["runs/half/displacement/s0000"].shape[0] == 7
    assert SnapshotStore.open(path).runs()["half"]["status"] == "incomplete"
    ds = open_snapshots(path)
    assert ds.attrs["runs"] == ["done"] and ds.sizes["snapshot"] == 4
    with pytest.raises(ValueError, match="incomplete"):
        open_run(path, "half")
    # closing with fewer frames than announced times leaves it incomplete
    assert writer.close() is False
    assert SnapshotStore.open(path).runs()["half"]["status"] == "incomplete"


def test_ip_fields_omitted_unless_every_run_has_them(tmp_path):
    mesh = two_block_mesh()
    store = create_store(tmp_path / "s.zarr", mesh, n_subdomains=2)
    store.ingest_run(synthetic_run(mesh, "a", 3, 1))
    store.ingest_run(synthetic_run(mesh, "b", 3, 2, stress=False))
    ds = open_snapshots(tmp_path / "s.zarr")
    assert "stress" not in ds and "stress: missing in run(s) ['b']" in ds.attrs["omitted_fields"]
    assert "stress" in open_snapshots(tmp_path / "s.zarr", runs=["a"])


def test_mesh_mismatch_is_refused_and_the_store_is_unchanged(tmp_path):
    mesh = two_block_mesh()
    path = tmp_path / "s.zarr"
    store = create_store(path, mesh, n_subdomains=2)
    store.ingest_run(synthetic_run(mesh, "a", 3, 1))
    before = store_digest(path)
    moved = Mesh(mesh.nodes + np.where(np.arange(mesh.n_nodes) == 5, 1e-3, 0.0)[:, None], mesh.blocks, mesh.node_ids)
    source = tmp_path / "bad.frd"
    source.write_text("results")
    with pytest.raises(ValueError, match=r"bad\.frd \(run .b.\): the mesh differs.*node id 1015 is at"):
        store.ingest_run(synthetic_run(moved, "b", 3, 2, sources=(source,)))
    other_cells = Mesh(mesh.nodes, (CellBlock("C3D8", mesh.blocks[0].connectivity[:, ::-1], mesh.blocks[0].ids),
                                     mesh.blocks[1]), mesh.node_ids)
    with pytest.raises(ValueError, match="element id 500 has nodes"):
        store.ingest_run(synthetic_run(other_cells, "c", 3, 2))
    with pytest.raises(ValueError, match="nodes instead of"):
        store.ingest_run(synthetic_run(box((2, 2, 2)), "d", 3, 2, stress=False))
    assert store_digest(path) == before


def test_nan_is_an_error_naming_step_and_field_and_leaves_run_incomplete(tmp_path):
    mesh = two_block_mesh()
    path = tmp_path / "s.zarr"
    store = create_store(path, mesh, n_subdomains=2)
    with pytest.raises(ValueError, match=r"run 'a'.*field 'displacement' at step 9"):
        store.ingest_run(synthetic_run(mesh, "a", 12, 1, nan_at=9))
    assert store.runs()["a"]["status"] == "incomplete"
    with pytest.raises(ValueError, match="no complete run"):
        open_snapshots(path)
    # fixed source: rerun rewrites the run
    assert store.ingest_run(synthetic_run(mesh, "a", 12, 1)) == "written"
    assert open_snapshots(path).sizes["snapshot"] == 12


def test_compression_on_and_off_hold_identical_data(tmp_path):
    mesh = two_block_mesh()
    digests = {}
    for compression in ("lz4", None):
        path = tmp_path / f"{compression}.zarr"
        store = create_store(path, mesh, n_subdomains=2, compression=compression)
        store.ingest_run(synthetic_run(mesh, "a", 10, 4))
        ds = open_snapshots(path)
        digests[compression] = (ds.displacement.values.tobytes(), ds.stress.values.tobytes())
        codecs = zarr.open_group(str(path))["runs/a/displacement/s0001"].metadata.to_dict()["codecs"]
        assert any(c["name"] == "blosc" for c in codecs) == (compression == "lz4")
    assert digests["lz4"] == digests[None]


def test_store_errors_say_how_to_fix(tmp_path):
    mesh = two_block_mesh()
    store = create_store(tmp_path / "a.zarr", mesh)  # n_subdomains: default_subdomains (small mesh: 1)
    assert store.n_subdomains == 1
    with pytest.raises(ValueError, match="cannot split .* elements into 100000"):
        create_store(tmp_path / "a2.zarr", mesh, n_subdomains=100000)
    with pytest.raises(ValueError, match="unknown compression"):
        create_store(tmp_path / "b.zarr", mesh, n_subdomains=2, compression="gzip")
    create_store(tmp_path / "c.zarr", mesh, n_subdomains=2)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        create_store(tmp_path / "c.zarr", mesh, n_subdomains=2)
    (tmp_path / "plain").mkdir()
    with pytest.raises(ValueError, match="not a romdask snapshot store"):
        open_snapshots(tmp_path / "plain")
    store = SnapshotStore.open(tmp_path / "c.zarr")
    store.ingest_run(synthetic_run(mesh, "a", 2, 1))
    with pytest.raises(ValueError, match="other sources.*overwrite=True"):
        store.ingest_run(synthetic_run(mesh, "a", 3, 1))
    assert store.ingest_run(synthetic_run(mesh, "a", 2, 1)) == "skipped"
    assert store.ingest_run(synthetic_run(mesh, "a", 3, 1), overwrite=True) == "written"
    assert open_run(tmp_path / "c.zarr", "a").sizes["step"] == 3


def test_solver_given_partition(tmp_path):
    mesh = two_block_mesh()
    node_part = (mesh.nodes[:, 0] > 2.0).astype(np.int64)
    store = create_store(tmp_path / "s.zarr", mesh, partition=node_part)
    assert store.n_subdomains == 2
    lay = store.layout
    ids_in_1 = np.sort(lay.mesh.node_ids[lay.node_slice(1)])
    assert np.array_equal(ids_in_1, np.sort(mesh.node_ids[node_part == 1]))


def test_writer_without_announced_times_as_a_context_manager(tmp_path):
    mesh = two_block_mesh()
    store = create_store(tmp_path / "s.zarr", mesh, n_subdomains=2, step_chunk=2)
    u, _ = reference_fields(mesh, 5, 0)
    with store.writer("free", mesh=shuffled(mesh), fields=["displacement"]) as writer:
        m = writer._mesh
        for k in range(5):
            writer.write(10 * k, 0.1 * k, {"displacement": u[k, m.node_ids], "reactions": np.zeros((2, 3))})
    ds = open_run(tmp_path / "s.zarr", "free")
    assert list(ds.step.values) == [0, 10, 20, 30, 40] and ds.displacement.chunks[0] == (5,)
    assert zarr.open_group(str(tmp_path / "s.zarr"))["runs/free/displacement/s0000"].chunks[0] == 2
    comp = np.tile([0, 1, 2], mesh.n_nodes)
    assert np.array_equal(ds.displacement.values, u[:, ds.node_id.values, comp])
    with pytest.raises(ValueError, match="does not increase"):
        with store.writer("bad", mesh=mesh) as writer:
            writer.write(0, 1.0, {"displacement": u[0, mesh.node_ids]})
            writer.write(1, 1.0, {"displacement": u[1, mesh.node_ids]})
    assert store.runs()["bad"]["status"] == "incomplete"


def test_one_block_per_subdomain_view(tmp_path, raise_on_compute):
    """``row_chunks="subdomain"``: the same data as the default view, one block (and one read
    task) per subdomain covering every snapshot, for node and ip fields; building computes nothing."""
    mesh = two_block_mesh()
    path = tmp_path / "s.zarr"
    store = create_store(path, mesh, n_subdomains=3)
    store.ingest_run(synthetic_run(mesh, "a", 9, 1))
    store.ingest_run(synthetic_run(mesh, "b", 5, 2))
    with raise_on_compute():
        per_run = open_snapshots(path)
        per_sub = open_snapshots(path, row_chunks="subdomain")
    u = per_sub.displacement.data
    assert u.chunks == ((14,), per_run.displacement.data.chunks[1]) and u.numblocks == (1, 3)
    assert per_sub.stress.data.chunks == ((14,), per_run.stress.data.chunks[1], (6,))
    assert len(u.__dask_graph__()) == 3  # one read task per subdomain, nothing else
    assert per_sub.attrs["row_chunks"] == "subdomain"
    assert np.array_equal(u.compute(), per_run.displacement.values)
    assert np.array_equal(per_sub.stress.values, per_run.stress.values)
    one_run = open_snapshots(path, runs=["b"], row_chunks="subdomain")
    assert np.array_equal(one_run.displacement.values, per_run.displacement.values[9:])
    with pytest.raises(ValueError, match="row_chunks must be 'run'"):
        open_snapshots(path, row_chunks="step")


def test_runs_of_a_reader_and_of_the_writer_share_the_displacement(tmp_path):
    """A run read from solver files names its displacement components ux, uy, uz, romdask's
    writer (the built-in solver, ``run_many``) x, y, z: both are the dofs' x, y, z, and one store
    holding both kinds keeps the displacement (it was dropped as 'components differ', and
    reduce then failed with an AttributeError)."""
    mesh = two_block_mesh()
    path = tmp_path / "s.zarr"
    store = create_store(path, mesh, n_subdomains=2)
    run = synthetic_run(mesh, "read", 4, 1, stress=False)
    store.ingest_run(Run(run.name, mesh, run.times, {"displacement": FieldSpec("node", ("ux", "uy", "uz"))},
                         run.frames, solver="calculix"))
    u, _ = reference_fields(mesh, 3, 2)
    with store.writer("written", mesh=mesh, times=0.5 * np.arange(3), fields=["displacement"]) as writer:
        for k in range(3):
            writer.write(k, 0.5 * k, {"displacement": u[k, mesh.node_ids]})
    ds = open_snapshots(path)
    assert "displacement" in ds and ds.attrs["omitted_fields"] == ""
    np.testing.assert_array_equal(ds.displacement.sel(snapshot=ds.run == "written").values[1],
                                  open_run(path, "written").displacement.values[1])
