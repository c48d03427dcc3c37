import dataclasses

import numpy as np
import pytest

from romdask.fem.mesh import CellBlock, Mesh
from romdask.problem.loads import Dirichlet, Pressure
from romdask.problem import Problem

NODES = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0], [0, 0, 1], [1, 0, 1], [1, 1, 1], [0, 1, 1.0]])


def two_tets():
    block = CellBlock("C3D4", [[0, 1, 3, 4], [1, 2, 3, 6]], ids=[10, 20])
    return Mesh(NODES, (block,), element_sets={"a": [0], "b": [1], "both": [0, 1]})


def test_material_elements_cover_each_element_once():
    mesh = two_tets()
    p = Problem(mesh, {"a": "law1", "b": "law2"}, (Dirichlet([0], (0, 1, 2)),), times=[0, 1])
    pairs = p.material_elements()
    assert [law for law, _ in pairs] == ["law1", "law2"]
    np.testing.assert_array_equal(pairs[1][1], [1])
    assert Problem(mesh, "one", (), times=[0, 1]).material_elements()[0][1].tolist() == [0, 1]


def test_overlapping_or_missing_material_sets_name_the_elements():
    mesh = two_tets()
    with pytest.raises(ValueError, match=r"elements \[10\] are covered \[2\]"):
        Problem(mesh, {"a": 1, "both": 2}, (), times=[0, 1])
    with pytest.raises(ValueError, match=r"elements \[20\] are covered \[0\]"):
        Problem(mesh, {"a": 1}, (), times=[0, 1])
    with pytest.raises(ValueError, match="unknown element set 'c'"):
        Problem(mesh, {"c": 1}, (), times=[0, 1])


@pytest.mark.parametrize("times", [[0, 1, 1], [-1, 2], [0, np.inf], [0]])
def test_times_must_start_at_zero_and_increase(times):
    with pytest.raises(ValueError, match="times"):
        Problem(two_tets(), "law", (), times=times)


def test_times_may_start_later_for_a_restart():
    """The rest of a history (solved from a given state, hifi.solve(initial=...))."""
    problem = Problem(two_tets(), "law", (), times=[0, 1, 2])
    assert dataclasses.replace(problem, times=problem.times[1:]).times.tolist() == [1.0, 2.0]


def test_loads_must_refer_to_the_mesh():
    with pytest.raises(ValueError, match="beyond"):
        Problem(two_tets(), "law", (Dirichlet([8], 0),), times=[0, 1])
    with pytest.raises(ValueError, match="beyond"):
        Problem(two_tets(), "law", (), loads=(Pressure([[2, 0]], 1.0),), times=[0, 1])
