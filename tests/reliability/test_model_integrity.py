"""A saved model cannot be edited silently, and saving one destroys nothing romdask did not make
(issue 18, items 2 and 4)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import zarr

import romdask
from romdask.materials import LinearElastic, law_to_json
from romdask.online import ReducedModel, open_full_modes
from romdask.problems.plate import plate_problem

R, N = 4, 2


@pytest.fixture(scope="module")
def mesh():
    return plate_problem(n=1).mesh


@pytest.fixture
def model() -> ReducedModel:
    rng = np.random.default_rng(0)
    return ReducedModel(
        modes_strain=rng.standard_normal((R, 6, N)), weights=rng.random(R), point_ids=np.arange(R),
        materials=((LinearElastic(200000.0, 0.3), np.arange(R)),), load_vectors=rng.standard_normal((1, N)),
        load_names=("pressure",), initial_state=np.zeros((R, 0)), metadata={"units": {"stress": "MPa"}},
    )


@pytest.fixture
def saved(model, mesh, tmp_path) -> Path:
    """A model with full modes and its mesh, as ``reduce(...).save`` writes it."""
    modes = np.random.default_rng(1).standard_normal((3 * mesh.n_nodes, N))
    return model.save(tmp_path / "m.zarr", full={"modes": modes}, mesh=mesh)


def _edit_json(file: Path, edit) -> None:
    meta = json.loads(file.read_text())
    edit(meta)
    file.write_text(json.dumps(meta))


def test_dtype_edit_in_zarr_json_is_refused(saved):
    _edit_json(saved / "modes_strain" / "zarr.json", lambda m: m.update(data_type="int64"))
    with pytest.raises(ValueError, match="'modes_strain'"):
        ReducedModel.open(saved)


def test_law_parameter_edit_is_refused(saved):
    def halve_young(meta):
        meta["attributes"]["laws"][0]["parameters"]["young"] /= 2

    _edit_json(saved / "zarr.json", halve_young)
    with pytest.raises(ValueError, match="checksum mismatch in attribute 'laws'"):
        ReducedModel.open(saved)


def test_full_modes_times_100_are_refused_before_any_reconstruction(saved):
    from romdask.online import open_full

    arr = zarr.open_array(saved / "full" / "modes", mode="r+")
    arr[...] = 100 * arr[...]
    with pytest.raises(ValueError, match="checksum mismatch in array 'full/modes'"):
        open_full(saved)
    with pytest.raises(ValueError, match="checksum mismatch in array 'full/modes'"):
        open_full_modes(saved)
    ReducedModel.open(saved)  # the core is intact: the online solve needs no full/


def test_version_true_is_not_2(saved):
    _edit_json(saved / "zarr.json", lambda m: m["attributes"].update(version=True))
    with pytest.raises(ValueError, match="version True"):
        ReducedModel.open(saved)


def test_old_model_without_the_whole_checksum_still_opens(saved, model):
    """A model of the previous romdask: per-array ``checksums`` only, no ``checksum``."""
    attrs = json.loads((saved / "zarr.json").read_text())["attributes"]
    assert "checksum" in attrs and "checksums" in attrs  # today's writer: both (old readers use "checksums")
    _edit_json(saved / "zarr.json", lambda m: m["attributes"].pop("checksum"))
    back = ReducedModel.open(saved)
    assert back.modes_strain.tobytes() == model.modes_strain.tobytes()
    from romdask.online import open_full, read_full_mesh

    assert open_full_modes(saved).shape[1] == N and open_full(saved).modes.shape[1] == N
    assert read_full_mesh(saved).n_nodes > 0
    _edit_json(saved / "modes_strain" / "zarr.json", lambda m: m.update(data_type="int64"))
    with pytest.raises(ValueError, match="'modes_strain' must be a float64 array"):
        ReducedModel.open(saved)  # old models still get per-array dtypes checked by name


# ------------------------------------------------------------------ overwrite only what romdask made
def _snapshot_store(path: Path, mesh) -> Path:
    from romdask.store import create_store

    return Path(create_store(path, mesh, n_subdomains=1).path)


def _inp_folder(path: Path) -> Path:
    path.mkdir()
    (path / "x.inp").write_text("*NODE\n")
    (path / "x.frd").write_text("frd")
    return path


def _tree(path: Path) -> dict[str, bytes]:
    return {str(f.relative_to(path)): f.read_bytes() for f in sorted(path.rglob("*")) if f.is_file()}


def test_save_over_a_snapshot_store_or_foreign_folder_is_refused(model, mesh, tmp_path):
    for target in (_snapshot_store(tmp_path / "s.zarr", mesh), _inp_folder(tmp_path / "runs")):
        before = _tree(target)
        with pytest.raises(ValueError, match=f"{target.name} is not a romdask model .*choose another"):
            model.save(target, overwrite=True)
        assert _tree(target) == before
    (tmp_path / "file").write_text("keep me")
    with pytest.raises(ValueError, match="is not a romdask model"):
        model.save(tmp_path / "file", overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "runs", "s.zarr"]  # no temporaries left


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(Path(romdask.__file__).parents[1])}
    return subprocess.run([sys.executable, "-m", "romdask.cli", *args], check=False, capture_output=True, text=True,
                          env=env)


def test_cli_reduce_out_store_overwrite_is_refused(mesh, tmp_path):
    store = _snapshot_store(tmp_path / "s.zarr", mesh)
    (tmp_path / "law.json").write_text(json.dumps(law_to_json(LinearElastic(200000.0, 0.3))))
    before = _tree(store)
    out = _cli("reduce", str(store), "--out", str(store), "--overwrite", "--law", str(tmp_path / "law.json"))
    assert out.returncode == 1 and "s.zarr" in out.stderr and "not a reduced model" in out.stderr, out.stderr
    assert _tree(store) == before


def test_cli_reduce_out_folder_of_inp_overwrite_is_refused(mesh, tmp_path):
    store = _snapshot_store(tmp_path / "s.zarr", mesh)
    (tmp_path / "law.json").write_text(json.dumps(law_to_json(LinearElastic(200000.0, 0.3))))
    folder = _inp_folder(tmp_path / "runs")
    out = _cli("reduce", str(store), "--out", str(folder), "--overwrite", "--law", str(tmp_path / "law.json"))
    assert out.returncode == 1 and "runs" in out.stderr and "not a reduced model" in out.stderr, out.stderr
    assert _tree(folder) == {"x.frd": b"frd", "x.inp": b"*NODE\n"}


# ------------------------------------------------------------------ temporaries of killed saves
def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_stale_temporary_of_a_dead_pid_is_cleaned(model, tmp_path):
    stale = tmp_path / f"m.zarr.tmp-{_dead_pid()}"
    stale.mkdir()
    (stale / "zarr.json").write_text("{}")
    model.save(tmp_path / "m.zarr")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.zarr"]


def test_temporary_of_a_live_pid_is_left_alone(model, tmp_path):
    live = tmp_path / f"m.zarr.tmp-{os.getpid()}"
    live.mkdir()
    (live / "zarr.json").write_text("{}")
    model.save(tmp_path / "m.zarr")
    model.save(tmp_path / "m.zarr", overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.zarr", live.name]
    assert (live / "zarr.json").read_text() == "{}"


def test_temporary_of_another_host_is_left_alone_until_old(model, tmp_path):
    foreign = tmp_path / f"m.zarr.tmp-{_dead_pid()}@other-host.0123abcd"
    foreign.mkdir()
    model.save(tmp_path / "m.zarr")
    assert foreign.exists()  # its pid cannot be checked here
    day_ago = foreign.stat().st_mtime - 2 * 24 * 3600
    os.utime(foreign, (day_ago, day_ago))
    model.save(tmp_path / "m.zarr", overwrite=True)
    assert not foreign.exists()


def test_model_moved_aside_by_a_killed_swap_is_restored(model, tmp_path):
    path = model.save(tmp_path / "m.zarr")
    os.rename(path, tmp_path / f"m.zarr.old-{_dead_pid()}")  # killed between the two renames
    with pytest.raises(ValueError, match="already exists"):
        model.save(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.zarr"]
    ReducedModel.open(path)
