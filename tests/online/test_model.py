"""ReducedModel: validation, bit-exact Zarr round trip, checksums, no pickle, full modes apart."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import dask.array as da
import numpy as np
import pytest
import zarr

from romdask.materials import CalculixViscoplastic, Chaboche, LinearElastic, law_to_json
from romdask.online import ReducedModel, open_full_modes
from romdask.online.integrity import model_checksum

R, N, Q, NL = 10, 4, 2, 2


def make_fields(seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    cx = CalculixViscoplastic(
        200000.0, 0.3, plastic=[(250.0, 0.0), (400.0, 0.05)], hardening="combined",
        norton=(1e-12, 4.0, 0.0), cyclic_hardening=[(100.0, 0.0), (150.0, 0.1)],
    )  # fmt: skip
    ch = Chaboche(young=190000.0, poisson=0.29, r0=80.0, q=30.0, b=5.0)
    pts_cx = np.array([0, 2, 4, 6, 8])
    pts_ch = np.array([1, 3, 5, 7, 9])
    state = np.full((R, 14), np.nan)
    state[pts_cx] = cx.initial_state(5)
    state[np.ix_(pts_ch, np.arange(13))] = ch.initial_state(5) + 0.25
    weights = rng.random(R)
    weights[[3, 7]] = 0.0  # Q-DEIM points
    return dict(
        modes_strain=rng.standard_normal((R, 6, N)),
        weights=weights,
        point_ids=rng.permutation(1000)[:R],
        materials=((cx, pts_cx), (ch, pts_ch)),
        load_vectors=rng.standard_normal((Q, N)),
        load_names=("pressure", "shear"),
        initial_state=state,
        lifting={
            "lifting_modes_strain": rng.standard_normal((R, 6, NL)),
            "lifting_names": ["ux_top", "uz_top"],
            "lifting_load": rng.standard_normal((NL, N)),
        },
        gappy={"stress": rng.standard_normal((6 * R, 3)), "p": rng.standard_normal((R, 2))},
        metadata={
            "pod_tol": 1e-6,
            "singular_values": [3.0, 1.5, 0.2, 1e-3],
            "ecm_residual": 4.2e-6,
            "training_runs": ["run0", "run1"],
            "units": {"length": "mm", "stress": "MPa"},
            "romdask_version": "0.1.0",
        },
    )


@pytest.fixture
def model() -> ReducedModel:
    return ReducedModel(**make_fields())


def bitwise_equal(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def test_round_trip_bit_exact(model, tmp_path):
    path = model.save(tmp_path / "model.zarr")
    back = ReducedModel.open(path)
    arrays, back_arrays = model.arrays(), back.arrays()
    assert set(arrays) == set(back_arrays)
    for name in arrays:
        assert bitwise_equal(arrays[name], back_arrays[name]), name
        assert not back_arrays[name].flags.writeable
    assert [law for law, _ in back.materials] == [law for law, _ in model.materials]
    assert [type(law) for law, _ in back.materials] == [CalculixViscoplastic, Chaboche]
    assert back.load_names == model.load_names
    assert back.lifting["lifting_names"] == ("ux_top", "uz_top")
    assert set(back.gappy) == {"stress", "p"}
    assert back.metadata == model.metadata
    assert back.info() == model.info()
    json.dumps(back.info())
    assert not (tmp_path / "model.zarr.tmp").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["model.zarr"]


def test_full_modes_apart_and_lazy(model, tmp_path):
    rng = np.random.default_rng(1)
    full = rng.standard_normal((30_000, N))
    small = model.save(tmp_path / "small.zarr")
    big = model.save(tmp_path / "big.zarr", full_modes=da.from_array(full, chunks=(7_000, N)))

    def size(p: Path, exclude: str | None = None) -> int:
        return sum(f.stat().st_size for f in p.rglob("*") if f.is_file() and (exclude is None or exclude not in f.parts))

    assert size(small) < 40_000  # core: a few kB
    root = Path("zarr.json")  # its checksum attribute lists the full arrays' digests (a few hundred bytes)
    assert size(big, exclude="full") - (big / root).stat().st_size == size(small) - (small / root).stat().st_size
    assert (big / root).stat().st_size < (small / root).stat().st_size + 2_000
    assert size(big) > full.nbytes // 2  # the full modes went into big/full/
    back = ReducedModel.open(big)
    assert bitwise_equal(back.modes_strain, model.modes_strain)
    lazy = open_full_modes(big)
    assert isinstance(lazy, da.Array) and lazy.shape == full.shape
    assert bitwise_equal(lazy.compute(), full)
    assert bitwise_equal(open_full_modes(big, lazy=False)[100:200], full[100:200])
    with pytest.raises(ValueError, match="no full modes"):
        open_full_modes(small)
    with pytest.raises(ValueError, match="full_modes must have shape"):
        model.save(tmp_path / "bad.zarr", full_modes=np.zeros((10, N + 1)))


def test_rewritten_array_fails_checksum(model, tmp_path):
    path = model.save(tmp_path / "m.zarr")
    arr = zarr.open_array(path / "load_vectors", mode="r+")
    data = arr[...]
    data[0, 0] += 1e-12
    arr[...] = data
    with pytest.raises(ValueError, match="checksum mismatch in array 'load_vectors'"):
        ReducedModel.open(path)


@pytest.mark.parametrize("compression", ["lz4", None])
def test_corrupted_chunk_bytes_name_the_array(model, tmp_path, compression):
    path = model.save(tmp_path / "m.zarr", compression=compression)
    chunks = [f for f in (path / "modes_strain").rglob("*") if f.is_file() and f.name != "zarr.json"]
    assert chunks
    raw = bytearray(chunks[0].read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    chunks[0].write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="'modes_strain'"):
        ReducedModel.open(path)


def _edit_attrs(path: Path, **changes) -> None:
    """Edit root attributes and recompute the checksum, as a deliberate forger would: the
    checks behind the checksum must hold on their own."""
    meta_file = path / "zarr.json"
    meta = json.loads(meta_file.read_text())
    meta["attributes"].update(changes)
    meta_file.write_text(json.dumps(meta))
    if "checksum" in meta["attributes"]:
        root = zarr.open_group(path, mode="r+", zarr_format=3)
        root.attrs["checksum"] = model_checksum(root)


def test_wrong_format_or_version(model, tmp_path):
    path = model.save(tmp_path / "m.zarr")
    _edit_attrs(path, version=3)
    with pytest.raises(ValueError, match=r"this romdask reads 'romdask-reduced-model' versions \[1, 2\]"):
        ReducedModel.open(path)
    _edit_attrs(path, version=1, format="romdask-snapshots")
    with pytest.raises(ValueError, match="versions"):
        ReducedModel.open(path)
    with pytest.raises(ValueError, match="not a Zarr v3 group"):
        ReducedModel.open(tmp_path / "nothing.zarr")


def test_unknown_law_type_is_never_imported(model, tmp_path):
    path = model.save(tmp_path / "m.zarr")
    laws = json.loads((path / "zarr.json").read_text())["attributes"]["laws"]
    laws[1] = {"type": "os.system", "parameters": {"command": "echo pwned"}}
    _edit_attrs(path, laws=laws)
    before = set(sys.modules)
    with pytest.raises(ValueError, match="unknown law type 'os.system'"):
        ReducedModel.open(path)
    laws[1] = {"type": "romdask_evil_module_xyz.Law", "parameters": {}}
    _edit_attrs(path, laws=laws)
    with pytest.raises(ValueError, match="unknown law type"):
        ReducedModel.open(path)
    assert "romdask_evil_module_xyz" not in sys.modules
    assert set(sys.modules) - before == set()
    laws[1] = {"type": "Chaboche", "parameters": {"young": 1.0, "__class__": 3}}
    _edit_attrs(path, laws=laws)
    with pytest.raises(ValueError, match="unknown parameters"):
        ReducedModel.open(path)


def test_no_pickle_in_files(model, tmp_path):
    path = model.save(tmp_path / "m.zarr", full_modes=np.ones((50, N)), compression=None)
    files = [f for f in path.rglob("*") if f.is_file()]
    assert len(files) > 10
    for f in files:
        raw = f.read_bytes()
        # a pickle of protocol 4/5 starts with PROTO 4/5 followed by FRAME (0x95)
        assert b"\x80\x04\x95" not in raw and b"\x80\x05\x95" not in raw, f
        if f.name == "zarr.json":
            meta = json.loads(raw)
            if meta["node_type"] == "array":
                assert meta["data_type"] in ("float64", "int64"), f
                assert all(c["name"] in ("bytes", "blosc") for c in meta["codecs"]), f


def test_overwrite_refusal(model, tmp_path):
    path = model.save(tmp_path / "m.zarr")
    with pytest.raises(ValueError, match="overwrite=True"):
        model.save(path)
    other = ReducedModel(**{**make_fields(seed=5)})
    other.save(path, overwrite=True)
    assert bitwise_equal(ReducedModel.open(path).modes_strain, other.modes_strain)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.zarr"]


def test_failed_write_leaves_nothing(model, tmp_path, monkeypatch):
    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(ReducedModel, "_write", boom)
    with pytest.raises(RuntimeError):
        model.save(tmp_path / "m.zarr")
    assert list(tmp_path.iterdir()) == []


def test_fields_are_read_only(model):
    with pytest.raises(ValueError):
        model.weights[0] = 1.0
    with pytest.raises(AttributeError):
        model.weights = np.zeros(R)  # frozen


def _with(**changes) -> dict:
    fields = make_fields()
    fields.update(changes)
    return fields


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"modes_strain": np.zeros((R, 3, N))}, r"shape \(r, 6, n\)"),
        ({"weights": np.ones(R - 1)}, "one per reduced point"),
        ({"weights": -np.ones(R)}, ">= 0"),
        ({"weights": np.full(R, np.nan)}, "finite"),
        ({"point_ids": np.zeros(R, np.int64)}, "distinct"),
        ({"point_ids": np.arange(R, dtype=float)}, "integer"),
        ({"load_vectors": np.zeros((Q, N + 1))}, "load_vectors"),
        ({"load_names": ("a",)}, "one per row"),
        ({"initial_state": np.zeros((R, 14))}, "NaN after"),
        ({"initial_state": np.zeros((R, 13))}, "largest law state size"),
        ({"gappy": {"p": np.zeros((R + 1, 2))}}, "r \\* k rows"),
        ({"gappy": {"..": np.zeros((R, 2))}}, "quantity names must be"),
        ({"metadata": {"f": object()}}, "JSON"),
        ({"lifting": {"lifting_modes_strain": np.zeros((R, 6, 2))}}, "exactly"),
    ],
)
def test_invalid_fields(changes, message):
    with pytest.raises(ValueError, match=message):
        ReducedModel(**_with(**changes))


def test_materials_cover_each_point_once():
    base = make_fields()
    (cx, pts_cx), (ch, pts_ch) = base["materials"]
    with pytest.raises(ValueError, match=r"without a law: \[9\]"):
        ReducedModel(**_with(materials=((cx, pts_cx), (ch, pts_ch[:-1]))))
    with pytest.raises(ValueError, match=r"with several: \[0\]"):
        ReducedModel(**_with(materials=((cx, pts_cx), (ch, np.append(pts_ch, 0)))))
    with pytest.raises(ValueError, match=r"indices in 0\.\.9"):
        ReducedModel(**_with(materials=((cx, pts_cx), (ch, np.append(pts_ch, R)))))

    class MyElastic(LinearElastic):
        pass

    with pytest.raises(ValueError, match="is not registered"):
        ReducedModel(**_with(materials=((cx, pts_cx), (MyElastic(1.0, 0.2), pts_ch))))


def test_stateless_law_and_no_lifting(tmp_path):
    law = LinearElastic(210000.0, 0.3)
    model = ReducedModel(
        modes_strain=np.ones((3, 6, 2)),
        weights=[1.0, 0.5, 0.0],
        point_ids=[5, 1, 9],
        materials=[(law, [0, 1, 2])],
        load_vectors=np.zeros((0, 2)),
        load_names=(),
        initial_state=np.zeros((3, 0)),
    )
    back = ReducedModel.open(model.save(tmp_path / "e.zarr"))
    assert back.lifting is None and back.gappy == {} and back.load_names == ()
    assert back.materials[0][0] == law and back.initial_state.shape == (3, 0)
    assert back.info()["laws"] == [{**law_to_json(law), "n_points": 3}]
    assert back.info()["laws"][0]["parameters"]["young"] == 210000.0


def test_tampered_gappy_names_refused(model, tmp_path):
    path = model.save(tmp_path / "m.zarr")
    _edit_attrs(path, gappy=["../weights"])
    with pytest.raises(ValueError, match="invalid gappy quantity names"):
        ReducedModel.open(path)


def test_cli_info_prints_a_reduced_model(model, tmp_path, capsys):
    from romdask.cli import main

    model.save(tmp_path / "m.zarr")
    assert main(["info", str(tmp_path / "m.zarr")]) == 0
    out = capsys.readouterr().out
    assert "reduced model" in out and f"modes: {model.n_modes} displacement" in out
    assert main(["info", str(tmp_path / "m.zarr"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["n_modes"] == model.n_modes
    _edit_attrs(tmp_path / "m.zarr", version=99)
    assert main(["info", str(tmp_path / "m.zarr")]) == 1
    assert "version" in capsys.readouterr().err


def test_full_bases_saved_apart_and_opened_lazily(model, tmp_path):
    from romdask.online import open_full

    rng = np.random.default_rng(2)
    n_dofs, n_points = 300, 40
    full = {
        "modes": rng.standard_normal((n_dofs, N)),
        "lifting": rng.standard_normal((n_dofs, NL)),
        "gappy_stress": da.from_array(rng.standard_normal((6 * n_points, 3)), chunks=(50, 3)),
        "gappy_p": rng.standard_normal((n_points, 2)),
        "ip_points": rng.permutation(n_points),
    }
    path = model.save(tmp_path / "m.zarr", full=full)
    back = ReducedModel.open(path)
    assert bitwise_equal(back.modes_strain, model.modes_strain)
    bases = open_full(path)
    assert isinstance(bases.modes, da.Array) and bitwise_equal(bases.modes.compute(), full["modes"])
    assert bitwise_equal(bases.lifting.compute(), full["lifting"])
    assert bitwise_equal(bases.gappy["stress"].compute(), full["gappy_stress"].compute())
    assert bases.gappy["stress"].chunks[0][0] % 6 == 0  # whole points per chunk
    assert bitwise_equal(bases.gappy["p"].compute(), full["gappy_p"])
    assert np.array_equal(bases.ip_points, full["ip_points"])
    assert bitwise_equal(open_full_modes(path).compute(), full["modes"])
    with pytest.raises(ValueError, match="holds no full bases"):
        open_full(model.save(tmp_path / "small.zarr"))
    with pytest.raises(ValueError, match="not both"):
        model.save(tmp_path / "x.zarr", full_modes=full["modes"], full=full)
    with pytest.raises(ValueError, match=r"full\['gappy_p'\] must have shape \(n_rows, 2\)"):
        model.save(tmp_path / "x.zarr", full={"gappy_p": np.zeros((n_points, 3))})
    with pytest.raises(ValueError, match="disagree in size"):
        model.save(tmp_path / "x.zarr", full={"modes": full["modes"], "lifting": full["lifting"][:-3]})
    with pytest.raises(ValueError, match="unknown full arrays"):
        model.save(tmp_path / "x.zarr", full={"stress": np.zeros((3, 3))})
    assert not (tmp_path / "x.zarr").exists()
