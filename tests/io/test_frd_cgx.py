"""CalculiX GraphiX reads what write_frd writes (skipped without cgx).

cgx runs in batch mode without a display: ``cgx -bg script.fbd`` (Debian package
``calculix-cgx``, 2.17 in bookworm: ``apt-get install -y --no-install-recommends calculix-cgx``).
The script reads the file, asks for von Mises and the largest principal stress of a STRESS
dataset (computed by cgx from the six components) and writes back everything it read with
``send all frd`` (cgx's short format: I5 ids, E12.5 values), which is compared with the input.
"""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
import ccx_decks  # noqa: E402

from romdask.io.calculix import FRD_ENCODINGS, write_frd  # noqa: E402
from romdask.io.calculix.frd import HE20_FRD_TO_INP  # noqa: E402
from romdask.materials import von_mises  # noqa: E402

pytestmark = pytest.mark.skipif(
    shutil.which("cgx") is None,
    reason="`cgx` (CalculiX GraphiX) is not installed: apt-get install --no-install-recommends calculix-cgx",
)
FIELDS = ("DISP", "STRESS", "PE", "ERRIND")
_EXTREMES = re.compile(r"^\s*(\d+) L\s+\d+\s+\S+ (.{12})\s*(\S+)\s+(\S+)\s*\n\s*Extremal values.*\n"
                       r"\s*max:(\S+) at node:(\d+)\s*\n\s*min:(\S+) at node:(\d+)", re.MULTILINE)


def _run_cgx(folder: Path, commands: list[str]) -> str:
    (folder / "check.fbd").write_text("\n".join(commands + ["quit"]) + "\n")
    done = subprocess.run(["cgx", "-bg", "check.fbd"], cwd=folder, capture_output=True, text=True, timeout=60,
                          check=False)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return done.stdout


def _read_cgx_dump(path: Path):
    """nodes {id: xyz}, elements {id: (type, node ids)}, datasets [(name, time, {id: values})]."""
    nodes, elements, datasets = {}, {}, []
    mode, last, time = None, None, 0.0
    for line in path.read_text().splitlines():
        if line.startswith(("    2C", "    3C")):
            mode = line[4]
        elif line.startswith("  100CL"):
            time = float(line[12:].split()[0])
        elif line.startswith(" -4"):
            mode = "R"
            datasets.append((line.split()[1], time, {}))
        elif line.startswith(" -1") and mode in ("2", "R"):
            values = [float(line[k : k + 12]) for k in range(8, len(line.rstrip()), 12)]
            (nodes if mode == "2" else datasets[-1][2])[int(line[3:8])] = np.array(values)
        elif line.startswith(" -1") and mode == "3":
            last = int(line[3:8])
            elements[last] = (int(line[8:13]), [])
        elif line.startswith(" -2") and mode == "3":
            elements[last][1].extend(int(line[k : k + 5]) for k in range(3, len(line.rstrip()), 5))
    return nodes, elements, datasets


def _principal(stress_voigt: np.ndarray) -> float:
    s = stress_voigt
    return float(np.linalg.eigvalsh([[s[0], s[3], s[4]], [s[3], s[1], s[5]], [s[4], s[5], s[2]]]).max())


@pytest.mark.parametrize("encoding", FRD_ENCODINGS)
def test_cgx_reads_mesh_fields_and_stress_order(tmp_path, encoding):
    mesh = ccx_decks.mixed_mesh()
    rng = np.random.default_rng(3)
    times = [0.5, 1.0, 2.0]
    data = {"DISP": rng.normal(size=(3, mesh.n_nodes, 3)) * 1e-2, "STRESS": rng.normal(size=(3, mesh.n_nodes, 6)) * 100,
            "PE": rng.random((3, mesh.n_nodes)) * 1e-2, "ERRIND": np.array([1e-3, 2e-3, 4e-2])}  # fmt: skip
    write_frd(tmp_path / "rom.frd", mesh, times, data, encoding=encoding, description="cgx check",
              frame_text=[f"ind={v:.2E}" for v in data["ERRIND"]])
    stress_set = 1 + len(FIELDS) * 1 + 1  # STRESS at the second output time
    out = _run_cgx(tmp_path, ["read rom.frd", f"ds {stress_set} e 7", f"ds {stress_set} e 11", "send all frd ds 1 e 1"])
    assert "MODEL NAME:  record:    1Ucgx check" in out
    assert out.count("reading Dataset No:") == len(times) * len(FIELDS)
    nodes, elements, datasets = _read_cgx_dump(tmp_path / "all.frd")

    used = np.unique(np.concatenate([b.connectivity.ravel() for b in mesh.blocks]))
    assert sorted(nodes) == sorted(mesh.node_ids[used].tolist())
    for nid, xyz in nodes.items():
        np.testing.assert_allclose(xyz, mesh.nodes[mesh.node_index([nid])[0]], rtol=1e-5)
    codes = {"C3D4": 3, "C3D10": 6, "C3D8": 1, "C3D20R": 4, "C3D20": 4}
    for b in mesh.blocks:
        for eid, conn in zip(b.ids.tolist(), mesh.node_ids[b.connectivity]):
            order = conn[HE20_FRD_TO_INP] if len(conn) == 20 else conn
            assert elements[eid] == (codes[b.type], order.tolist())

    assert [(name, t) for name, t, _ in datasets] == [(f, t) for t in times for f in FIELDS]
    frd_order = {"STRESS": [0, 1, 2, 3, 5, 4]}
    for (name, t, values), (k, _) in zip(datasets, [(k, f) for k in range(3) for f in FIELDS]):
        assert sorted(values) == sorted(nodes)
        for nid, v in values.items():
            row = mesh.node_index([nid])[0]
            expected = np.atleast_1d(data[name][k] if name == "ERRIND" else data[name][k, row])
            expected = expected[frd_order.get(name, slice(None))]
            np.testing.assert_allclose(v, expected, rtol=1e-5, atol=1e-5 * np.abs(data[name][k]).max())

    # cgx's von Mises and largest principal stress at the nodes it names are ours (from romdask's
    # Voigt order): SXY SYZ SZX were read in the right places (a swap changes the principal)
    found = {m.group(4): m.groups() for m in _EXTREMES.finditer(out)}
    assert sorted(found) == ["Mises", "PS1"] and all(g[1].strip() == "ind=2.00E-03" for g in found.values())
    stress = data["STRESS"][1]
    for entity, value_of in (("Mises", von_mises), ("PS1", _principal)):
        _, _, _, _, vmax, nmax, vmin, nmin = found[entity]
        for value, nid in ((vmax, nmax), (vmin, nmin)):
            ours = value_of(stress[mesh.node_index([int(nid)])[0]])
            assert abs(float(value) - ours) <= 2e-5 * abs(ours), (entity, nid)
    swapped = stress[mesh.node_index([int(found["PS1"][5])])[0]][[0, 1, 2, 3, 5, 4]]
    assert abs(_principal(swapped) - float(found["PS1"][4])) > 1e-3 * abs(float(found["PS1"][4]))
