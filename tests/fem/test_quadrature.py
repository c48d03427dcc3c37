"""Integration-point data and kernels: patch tests, volumes, forces, mass, pressure."""

import itertools

import numpy as np
import pytest

from romdask.fem import (
    CellBlock,
    Mesh,
    get_element,
    internal_force,
    mass_matrix,
    nodal_force_vector,
    pressure_vector,
    quadrature,
    strain,
    strain_matrix,
)

NAMES = ["C3D4", "C3D10", "C3D8", "C3D20", "C3D20R"]
KUHN = [p for p in itertools.permutations(range(3))]


def box_mesh(name, n=2, *, corner_noise=0.0, midside_noise=0.0, affine=False, seed=0):
    """Unit box of n^3 cells (hexes, or 6 Kuhn tets per cell) built on a (2n+1)^3 lattice.

    Corners are perturbed by ``corner_noise * h``; midside nodes sit at edge midpoints and are
    then perturbed by ``midside_noise * h`` (curved edges); ``affine`` applies a random affine map.
    """
    rng = np.random.default_rng(seed)
    el = get_element(name)
    m = 2 * n + 1
    lattice = np.arange(m**3).reshape(m, m, m)  # lattice[i, j, k], i along x
    cells = []
    for i, j, k in itertools.product(range(n), repeat=3):
        base = np.array([2 * i, 2 * j, 2 * k])
        if name in ("C3D4", "C3D10"):
            for perm in KUHN:
                corners = [np.zeros(3, int)]
                for ax in perm:
                    nxt = corners[-1].copy()
                    nxt[ax] = 2
                    corners.append(nxt)
                corners = np.array(corners)
                if np.linalg.det(corners[1:] - corners[0]) < 0:
                    corners[[1, 2]] = corners[[2, 1]]
                T = (corners[1:] - corners[0]).T  # natural -> lattice offsets (affine tet)
                offs = corners[0] + (el.ref_nodes @ T.T).round().astype(int)
                cells.append(lattice[tuple((base + offs).T)])
        else:
            offs = (el.ref_nodes + 1).astype(int)
            cells.append(lattice[tuple((base + offs).T)])
    conn = np.array(cells)
    used, conn = np.unique(conn, return_inverse=True)
    conn = conn.reshape(-1, el.n_nodes)
    ijk = np.stack(np.unravel_index(used, (m, m, m)), axis=1)
    X = ijk / (2.0 * n)
    h = 1.0 / n
    corner = np.all(ijk % 2 == 0, axis=1)
    X[corner] += corner_noise * h * rng.uniform(-1, 1, (corner.sum(), 3))
    if (~corner).any():
        # midside node = mean of the two nearest corners of an element using it
        ref = el.ref_nodes
        n_corner = 4 if name in ("C3D4", "C3D10") else 8
        for a in range(n_corner, el.n_nodes):
            ends = [(i, j) for i, j in itertools.combinations(range(n_corner), 2)
                    if np.allclose((ref[i] + ref[j]) / 2, ref[a])][0]
            ends = list(ends)
            X[conn[:, a]] = X[conn[:, ends]].mean(axis=1)
        X[~corner] += midside_noise * h * rng.uniform(-1, 1, ((~corner).sum(), 3))
    if affine:
        A = np.eye(3) + 0.3 * rng.uniform(-1, 1, (3, 3))
        X = X @ A.T + rng.uniform(-1, 1, 3)
    return Mesh(X, (CellBlock(name, conn, 10 + np.arange(len(conn))),))


def boundary_faces(mesh):
    """(element, face) pairs of faces used by exactly one element (compared by corner sets)."""
    count, owner = {}, {}
    offsets = mesh.block_offsets
    for k, b in enumerate(mesh.blocks):
        el = get_element(b.type)
        n_c = 3 if b.type in ("C3D4", "C3D10") else 4
        for e, row in enumerate(b.connectivity):
            for f, nodes in enumerate(el.faces):
                key = frozenset(row[list(nodes[:n_c])].tolist())
                count[key] = count.get(key, 0) + 1
                owner[key] = (offsets[k] + e, f)
    return np.array([owner[key] for key, c in count.items() if c == 1])


def divergence_volume(mesh, faces):
    """Volume by the divergence theorem on straight-edged faces (bilinear quads / flat triangles),
    with an independent parametrization and a 4x4 Gauss rule: V = 1/3 sum int x . n dA."""
    g, w = np.polynomial.legendre.leggauss(4)
    vol = 0.0
    for e, f in faces:
        b, loc = mesh.element_block([e])
        blk = mesh.blocks[b[0]]
        el = get_element(blk.type)
        nodes = blk.connectivity[loc[0]][list(el.faces[f])]
        if blk.type in ("C3D4", "C3D10"):
            p0, p1, p2 = mesh.nodes[nodes[:3]]
            vol += np.dot((p0 + p1 + p2) / 3, np.cross(p1 - p0, p2 - p0) / 2) / 3
        else:
            p = mesh.nodes[nodes[:4]]
            for s, ws in zip(g, w):
                for t, wt in zip(g, w):
                    a, c = (1 + s) / 2, (1 + t) / 2
                    x = (1 - a) * (1 - c) * p[0] + a * (1 - c) * p[1] + a * c * p[2] + (1 - a) * c * p[3]
                    xs = ((1 - c) * (p[1] - p[0]) + c * (p[2] - p[3])) / 2
                    xt = ((1 - a) * (p[3] - p[0]) + a * (p[2] - p[1])) / 2
                    vol += ws * wt * np.dot(x, np.cross(xs, xt)) / 3
    return vol


@pytest.mark.parametrize("name", NAMES)
def test_volume_of_distorted_mesh(name):
    mesh = box_mesh(name, 2, corner_noise=0.2, seed=3)
    q = quadrature(mesh)
    expected = divergence_volume(mesh, boundary_faces(mesh))
    assert abs(expected - 1.0) > 1e-3  # really distorted
    assert q.weights.sum() == pytest.approx(expected, rel=1e-12)
    # per element too (each element's own boundary)
    for e in range(0, mesh.n_elements, 5):
        faces = np.array([(e, f) for f in range(len(get_element(name).faces))])
        assert q.weights[q.element_of_point == e].sum() == pytest.approx(divergence_volume(mesh, faces), rel=1e-12)


@pytest.mark.parametrize("name", NAMES)
def test_point_bookkeeping_and_coordinates(name):
    mesh = box_mesh(name, 2, affine=True, seed=4)
    q = quadrature(mesh)
    el = get_element(name)
    assert q.n_points == mesh.n_elements * el.n_points and q.n_dofs == mesh.n_dofs
    np.testing.assert_array_equal(q.element_of_point, np.repeat(np.arange(mesh.n_elements), el.n_points))
    np.testing.assert_array_equal(q.local_point, np.tile(np.arange(el.n_points), mesh.n_elements))
    # affine elements: physical point = map of the natural point
    e = 5
    X = mesh.nodes[mesh.blocks[0].connectivity[e]]
    corners = X[:4] if name in ("C3D4", "C3D10") else None
    if corners is not None:
        xi = el.points
        expect = corners[0] + xi @ (corners[1:] - corners[0])
    else:
        expect = el.shape(el.points) @ X
    np.testing.assert_allclose(q.coordinates[q.element_of_point == e], expect, atol=1e-14)
    assert not q.weights.flags.writeable and not q.blocks[0].dNdx.flags.writeable


@pytest.mark.parametrize("name", NAMES)
def test_patch_test_linear_field_gives_exact_constant_strain(name):
    mesh = box_mesh(name, 2, corner_noise=0.2, midside_noise=0.1, affine=True, seed=5)
    q = quadrature(mesh)
    rng = np.random.default_rng(6)
    A = rng.normal(size=(3, 3))
    c = rng.normal(size=3)
    u = (mesh.nodes @ A.T + c).ravel()
    eps = strain(q, u)
    E = (A + A.T) / 2
    expected = np.array([E[0, 0], E[1, 1], E[2, 2], 2 * E[0, 1], 2 * E[0, 2], 2 * E[1, 2]])
    np.testing.assert_allclose(eps, np.broadcast_to(expected, eps.shape), rtol=0, atol=1e-12 * np.abs(A).max())
    # engineering shear: u_x = y gives gamma_xy = 1 in column 3
    u2 = np.zeros_like(mesh.nodes)
    u2[:, 0] = mesh.nodes[:, 1]
    np.testing.assert_allclose(strain(q, u2.ravel())[:, 3], 1.0, atol=1e-12)


@pytest.mark.parametrize("name", NAMES)
def test_strain_matrix_matches_strain(name):
    mesh = box_mesh(name, 2, corner_noise=0.2, midside_noise=0.1, seed=7)
    q = quadrature(mesh)
    u = np.random.default_rng(8).normal(size=mesh.n_dofs)
    B = strain_matrix(q)
    assert B.shape == (6 * q.n_points, mesh.n_dofs)
    np.testing.assert_allclose(B @ u, strain(q, u).ravel(), rtol=0, atol=1e-12)
    # and B^T (w sigma) is the internal force
    s = np.random.default_rng(9).normal(size=(q.n_points, 6))
    np.testing.assert_allclose(B.T @ (q.weights[:, None] * s).ravel(), internal_force(q, s), atol=1e-12)


@pytest.mark.parametrize("name", NAMES)
def test_internal_force_of_constant_stress_is_boundary_traction(name):
    # affine geometry (plus corner noise for the low-order types): the rules are exact there
    low = name in ("C3D4", "C3D8")
    mesh = box_mesh(name, 2, corner_noise=0.2 if low else 0.0, affine=True, seed=10)
    q = quadrature(mesh)
    sig = np.array([3.0, -1.0, 2.0, 0.5, -0.7, 1.1])  # xx yy zz xy xz yz
    S = np.array([[sig[0], sig[3], sig[4]], [sig[3], sig[1], sig[5]], [sig[4], sig[5], sig[2]]])
    f = internal_force(q, np.tile(sig, (q.n_points, 1)))
    bf = boundary_faces(mesh)
    # int N_a n dA = -pressure_vector(p = 1)
    g = -pressure_vector(mesh, bf, 1.0).reshape(-1, 3)
    np.testing.assert_allclose(f.reshape(-1, 3), g @ S.T, rtol=0, atol=1e-12)
    boundary = np.unique(np.concatenate([mesh.blocks[0].connectivity[e][list(get_element(name).faces[k])]
                                         for e, k in bf]))
    interior = np.setdiff1d(np.arange(mesh.n_nodes), boundary)
    assert interior.size > 0
    np.testing.assert_allclose(f.reshape(-1, 3)[interior], 0.0, atol=1e-12)
    assert np.abs(f).max() > 0.1
    # out= is overwritten
    out = np.full(mesh.n_dofs, 7.0)
    assert internal_force(q, np.tile(sig, (q.n_points, 1)), out=out) is out
    np.testing.assert_allclose(out, f)


@pytest.mark.parametrize("name", NAMES)
def test_mass_matrix_sum_symmetry_definiteness(name):
    # straight edges: every rule integrates det J exactly, so the volume is unambiguous
    mesh = box_mesh(name, 2, corner_noise=0.2, seed=11)
    M = mass_matrix(mesh, density=7.8)
    volume = divergence_volume(mesh, boundary_faces(mesh))
    assert M.shape == (mesh.n_dofs, mesh.n_dofs)
    assert M.sum() == pytest.approx(3 * 7.8 * volume, rel=1e-12)
    # curved edges
    mesh = box_mesh(name, 2, corner_noise=0.2, midside_noise=0.05, seed=11)
    M = mass_matrix(mesh, density=7.8)
    D = M.toarray()
    np.testing.assert_allclose(D, D.T, atol=1e-15)
    assert np.linalg.eigvalsh(D).min() > 0
    assert D[0, 1] == 0.0 and D[0, 2] == 0.0  # no coupling between components


def test_mass_matrix_reference_values():
    # unit cube C3D8: M_ab = rho V (1 + d_x)(1 + d_y)(1 + d_z) / 216 with d = 1 if a, b share the coordinate
    el = get_element("C3D8")
    mesh = Mesh((el.ref_nodes + 1) / 2, (CellBlock("C3D8", [np.arange(8)]),))
    M = mass_matrix(mesh, 2.0).toarray()[::3, ::3]
    r = el.ref_nodes
    expect = 2.0 * np.prod(1 + (r[:, None, :] == r[None, :, :]), axis=-1) / 216
    np.testing.assert_allclose(M, expect, rtol=1e-14)
    # tet C3D4: M_ab = rho V (1 + delta_ab) / 20
    X = np.array([[0, 0, 0], [2, 0, 0], [0, 3, 0], [0, 0, 1.5]])
    mesh = Mesh(X, (CellBlock("C3D4", [np.arange(4)]),))
    M = mass_matrix(mesh).toarray()[1::3, 1::3]
    np.testing.assert_allclose(M, 1.5 * (1 + np.eye(4)) / 20, rtol=1e-14)
    # C3D10: corner-corner -V/120 (1 - ...) known: M_11 = 6V/420, M_55 = 32V/420, M_12 = V/420
    X10 = get_element("C3D10").ref_nodes * 2.0
    mesh = Mesh(X10, (CellBlock("C3D10", [np.arange(10)]),))
    V = 8.0 / 6
    M = mass_matrix(mesh).toarray()[::3, ::3]
    assert M[0, 0] == pytest.approx(6 * V / 420, rel=1e-13)
    assert M[0, 1] == pytest.approx(V / 420, rel=1e-13)
    assert M[4, 4] == pytest.approx(32 * V / 420, rel=1e-13)
    assert M[0, 4] == pytest.approx(-4 * V / 420, rel=1e-13)


def test_mass_matrix_element_rule_option():
    mesh = box_mesh("C3D20R", 1, corner_noise=0.2, seed=2)
    exact, element = mass_matrix(mesh), mass_matrix(mesh, rule="element")
    assert abs(exact - element).max() > 1e-4  # 2x2x2 is not exact for N_a N_b
    assert element.sum() == pytest.approx(exact.sum(), rel=1e-12)  # ... but exact for the volume
    hex8 = box_mesh("C3D8", 1, corner_noise=0.2, seed=2)
    assert abs(mass_matrix(hex8) - mass_matrix(hex8, rule="element")).max() == 0
    with pytest.raises(ValueError, match="rule must be"):
        mass_matrix(mesh, rule="lumped")


@pytest.mark.parametrize("name", NAMES)
def test_pressure_vector_on_flat_face(name):
    mesh = box_mesh(name, 2, affine=True, seed=12)
    el = get_element(name)
    bf = boundary_faces(mesh)
    # pick the faces on one side of the (affine) box: those whose centroid has the largest x . n0
    q = np.array([mesh.nodes[mesh.blocks[0].connectivity[e][list(el.faces[f])]].mean(axis=0) for e, f in bf])
    centre = mesh.nodes.mean(axis=0)
    normals, areas = [], []
    for e, f in bf:
        X = mesh.nodes[mesh.blocks[0].connectivity[e][list(el.faces[f][:3])]]
        nrm = np.cross(X[1] - X[0], X[2] - X[0])
        normals.append(nrm / np.linalg.norm(nrm))
    normals = np.array(normals)
    n0 = normals[np.argmax(q[:, 0])]
    side = np.abs(normals @ n0 - 1) < 1e-9
    assert side.sum() in (4, 8)
    faces = bf[side]
    assert np.all((q[side] - centre) @ n0 > 0)  # n0 is the outward normal
    # area of that side: it is a parallelogram spanned by two edges of the affine box
    pts = mesh.nodes[np.unique(np.concatenate([mesh.blocks[0].connectivity[e][list(el.faces[f])] for e, f in faces]))]
    rel = pts - pts.mean(axis=0)
    vt = np.linalg.svd(rel)[2]
    coords = rel @ vt[:2].T
    from scipy.spatial import ConvexHull

    area = ConvexHull(coords).volume
    p = 2.5
    f = pressure_vector(mesh, faces, p).reshape(-1, 3)
    np.testing.assert_allclose(f.sum(axis=0), -p * area * n0, rtol=1e-12, atol=1e-12)
    # per-face array of pressures gives the same
    np.testing.assert_allclose(pressure_vector(mesh, faces, np.full(len(faces), p)), f.ravel())


def test_pressure_reference_values_quadratic_faces():
    # unit square face of one C3D20 element (face S1 at z = 0, outward normal -z):
    # corners get -A p / 12, midsides A p / 3 (classic serendipity result), here along +z
    for name in ("C3D20", "C3D20R"):
        el = get_element(name)
        mesh = Mesh((el.ref_nodes + 1) / 2, (CellBlock(name, [np.arange(20)]),))
        f = pressure_vector(mesh, [[0, 0]], 1.0).reshape(-1, 3)
        face = list(el.faces[0])
        np.testing.assert_allclose(f[face[:4], 2], -1 / 12, rtol=1e-13)
        np.testing.assert_allclose(f[face[4:], 2], 1 / 3, rtol=1e-13)
        others = np.setdiff1d(np.arange(20), face)
        np.testing.assert_allclose(f[others], 0.0, atol=1e-16)
        np.testing.assert_allclose(f[:, :2], 0.0, atol=1e-16)
    # C3D10 face: corners 0, midsides A p / 3
    el = get_element("C3D10")
    mesh = Mesh(el.ref_nodes, (CellBlock("C3D10", [np.arange(10)]),))
    f = pressure_vector(mesh, [[0, 0]], 1.0).reshape(-1, 3)  # face S1 at z = 0, area 1/2
    np.testing.assert_allclose(f[[0, 1, 2], 2], 0.0, atol=1e-15)
    np.testing.assert_allclose(f[[4, 5, 6], 2], 0.5 / 3, rtol=1e-13)


def test_pressure_vector_errors():
    mesh = box_mesh("C3D4", 1)
    with pytest.raises(ValueError, match="faces 0..3"):
        pressure_vector(mesh, [[0, 4]])
    with pytest.raises(ValueError, match="element indices"):
        pressure_vector(mesh, [[6, 0]])


@pytest.mark.parametrize("name", NAMES)
def test_inverted_element_names_its_id(name):
    mesh = box_mesh(name, 1)
    conn = np.array(mesh.blocks[0].connectivity)
    ids = 100 + np.arange(len(conn))
    if name in ("C3D4", "C3D10"):
        conn[0, [1, 2]] = conn[0, [2, 1]]  # mirror: swap corners 2 and 3 (and their midsides)
        if name == "C3D10":
            conn[0, [4, 6, 8, 9]] = conn[0, [6, 4, 9, 8]]
    else:  # mirror: swap the bottom and top layers
        perm = [4, 5, 6, 7, 0, 1, 2, 3, 12, 13, 14, 15, 8, 9, 10, 11, 16, 17, 18, 19]
        conn[0] = conn[0][perm[: conn.shape[1]]]
    bad = Mesh(mesh.nodes, (CellBlock(name, conn, ids),))
    with pytest.raises(ValueError, match=r"id \[100\].*inverted or its node order is wrong"):
        quadrature(bad)
    with pytest.raises(ValueError, match=r"id \[100\]"):
        mass_matrix(bad)


def test_input_checks_and_nodal_force():
    mesh = box_mesh("C3D8", 1)
    q = quadrature(mesh)
    with pytest.raises(ValueError, match="u must have 24 dofs"):
        strain(q, np.zeros(23))
    with pytest.raises(ValueError, match="stress must have shape"):
        internal_force(q, np.zeros((q.n_points, 3)))
    f = nodal_force_vector(mesh.n_dofs, [1, 3, 3], 2, 1.5)
    assert f[3 * 1 + 2] == 1.5 and f[3 * 3 + 2] == 3.0 and f.sum() == 4.5
    with pytest.raises(ValueError, match="component"):
        nodal_force_vector(mesh.n_dofs, [1], 3, 1.0)
    with pytest.raises(ValueError, match="nodes must be in"):
        nodal_force_vector(mesh.n_dofs, [8], 0, 1.0)


def test_mixed_blocks_offsets():
    a = box_mesh("C3D8", 1)
    t = box_mesh("C3D10", 1)
    nodes = np.vstack([a.nodes, t.nodes + [2.0, 0, 0]])
    mesh = Mesh(nodes, (a.blocks[0], CellBlock("C3D10", t.blocks[0].connectivity + a.n_nodes)))
    q = quadrature(mesh)
    assert [b.ip_offset for b in q.blocks] == [0, 8]
    assert q.n_points == 8 + 6 * 4
    assert q.weights.sum() == pytest.approx(2.0, rel=1e-13)
    rng = np.random.default_rng(0)
    A = rng.normal(size=(3, 3))
    eps = strain(q, (mesh.nodes @ A.T).ravel())
    np.testing.assert_allclose(eps[:, 0], A[0, 0], atol=1e-12)
    np.testing.assert_allclose(eps[:, 5], A[1, 2] + A[2, 1], atol=1e-12)


# ---- agreement with the CalculiX 2.20 binary (skipped without ccx) ----


def _dat_block(text, header):
    rows = []
    for line in text[text.index(header):].splitlines()[2:]:
        if not line.strip():
            break
        rows.append([float(v) for v in line.split()])
    return np.array(rows)


def _run_ccx(tmp_path, name, X, u, dloads=(), fixed=None):
    import subprocess

    ids = [str(i + 1) for i in range(len(X))]
    # CalculiX reads numbers from fields of at most 20 characters: 13 significant digits
    lines = ["*NODE"] + [f"{i + 1}, {x[0]:.12e}, {x[1]:.12e}, {x[2]:.12e}" for i, x in enumerate(X)]
    lines += [f"*ELEMENT, TYPE={name}, ELSET=E", "1, " + ", ".join(ids[:15]) + ("," if len(ids) > 15 else "")]
    if len(ids) > 15:
        lines.append(", ".join(ids[15:]))
    lines += ["*NSET, NSET=NA"] + [", ".join(ids[i:i + 10]) for i in range(0, len(ids), 10)]
    lines += ["*MATERIAL, NAME=M", "*ELASTIC", "1000., 0.3", "*SOLID SECTION, ELSET=E, MATERIAL=M",
              "*STEP", "*STATIC", "*BOUNDARY"]
    if fixed is None:
        lines += [f"{i + 1}, {c + 1}, {c + 1}, {u[i, c]:.12e}" for i in range(len(X)) for c in range(3)]
    else:
        lines += [f"{d // 3 + 1}, {d % 3 + 1}, {d % 3 + 1}, 0." for d in fixed]
    if dloads:
        lines += ["*DLOAD"] + [f"1, P{face + 1}, {p}" for face, p in dloads]
    lines += ["*EL PRINT, ELSET=E", "E", "*EL PRINT, ELSET=E", "COORD", "*NODE PRINT, NSET=NA", "RF",
              "*NODE PRINT, NSET=NA", "U", "*END STEP"]
    (tmp_path / f"{name}.inp").write_text("\n".join(lines) + "\n")
    r = subprocess.run(["ccx", "-i", name], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout[-500:]
    text = (tmp_path / f"{name}.dat").read_text()
    return (_dat_block(text, "strains")[:, 2:], _dat_block(text, "global coordinates")[:, 2:],
            _dat_block(text, "forces")[:, 1:], _dat_block(text, "displacements")[:, 1:])


@pytest.mark.skipif(__import__("shutil").which("ccx") is None, reason="CalculiX ccx not installed")
@pytest.mark.parametrize("name", NAMES)
def test_agrees_with_calculix_binary(tmp_path, name):
    """Strains (point order!), point coordinates, internal and pressure forces of one distorted
    element vs ccx 2.20's .dat output (7 significant digits)."""
    rng = np.random.default_rng(0)
    el = get_element(name)
    X = el.ref_nodes + 0.08 * rng.uniform(-1, 1, el.ref_nodes.shape)
    X = np.array([[float(f"{v:.12e}") for v in x] for x in X])
    u = np.array([[float(f"{v:.12e}") for v in row] for row in 0.01 * rng.normal(size=X.shape)])
    E, C, RF, _ = _run_ccx(tmp_path, name, X, u)
    mesh = Mesh(X, (CellBlock(name, [np.arange(el.n_nodes)]),))
    q = quadrature(mesh)
    eps = strain(q, u.ravel())
    tensor = eps.copy()
    tensor[:, 3:] /= 2  # .dat strains carry tensor shear
    np.testing.assert_allclose(E, tensor, rtol=0, atol=2e-6 * np.abs(tensor).max())
    np.testing.assert_allclose(C, q.coordinates, rtol=0, atol=2e-6)
    lam, mu = 1000 * 0.3 / (1.3 * 0.4), 1000 / 2.6
    sig = 2 * mu * tensor
    sig[:, :3] += lam * eps[:, :3].sum(axis=1)[:, None]
    f = internal_force(q, sig).reshape(-1, 3)
    np.testing.assert_allclose(RF, f, rtol=0, atol=2e-6 * np.abs(f).max())
    # pressure on faces S1 and S3 with 3-2-1 supports: compare the displacements, solving
    # K u = f with K = B^T (w D) B built here (one C3D20R alone has hourglass modes: skipped)
    if name == "C3D20R":
        return
    fixed = [0, 1, 2, 4, 5, 3 * 3 + 2] if name in ("C3D8", "C3D20", "C3D20R") else [0, 1, 2, 4, 5, 3 * 2 + 2]
    _, _, _, U = _run_ccx(tmp_path, name, X, 0 * u, dloads=((0, 2.5), (2, -1.5)), fixed=fixed)
    fp = pressure_vector(mesh, [[0, 0], [0, 2]], [2.5, -1.5])
    D = lam * np.outer([1, 1, 1, 0, 0, 0], [1, 1, 1, 0, 0, 0]) + mu * np.diag([2, 2, 2, 1, 1, 1])
    B = strain_matrix(q).toarray().reshape(q.n_points, 6, -1)
    K = np.einsum("p,pim,ij,pjn->mn", q.weights, B, D, B)
    free = np.setdiff1d(np.arange(mesh.n_dofs), fixed)
    u_ours = np.zeros(mesh.n_dofs)
    u_ours[free] = np.linalg.solve(K[np.ix_(free, free)], fp[free])
    np.testing.assert_allclose(U.ravel(), u_ours, rtol=0, atol=2e-6 * np.abs(u_ours).max())
