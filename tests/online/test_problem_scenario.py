"""A new case against a model's signature (romdask.online.problem_scenario, `predict --deck`)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from romdask.offline import ReduceOptions, reduce
from romdask.online import problem_scenario
from romdask.problem import Dirichlet
from romdask.problems.plate import plate_problem

INCREMENTS = 16  # as the runs of tests/online/conftest.py


def problem(loading: str, amplitude: float, n_cycles: float):
    """A case of the stores' plate (tests/online/conftest.py) at another amplitude."""
    return plate_problem(amplitude=amplitude, n=3, n_cycles=n_cycles, increments_per_cycle=INCREMENTS,
                         loading=loading)


@pytest.fixture(scope="module")
def model(training):
    t = training("displacement")
    return reduce(t.path, t.law, runs=t.train, options=ReduceOptions(tol_ecm=1e-4)).model


def test_same_patterns_other_values_give_the_problems_scenario(model):
    new = problem("displacement", 0.005, 3)  # another amplitude, more cycles
    scenario = problem_scenario(model, new)
    np.testing.assert_array_equal(scenario.times, new.times)
    assert scenario.times.size == 3 * INCREMENTS + 1
    assert scenario.values(("top_displacement",), 2.5)[0] == pytest.approx(0.005)


def test_differences_are_listed(model):
    base = problem("displacement", 0.005, 1)
    base = dataclasses.replace(base, metadata={"source": "new.inp"})
    top = base.dirichlet[-1]
    moved = Dirichlet(top.nodes[:-1], top.components, top.value, top.amplitude, name=top.name)
    with pytest.raises(ValueError, match=r"new.inp: not the model's mesh and load patterns: pattern "
                                         r"'top_displacement' has 11 nodes instead of 12"):
        problem_scenario(model, dataclasses.replace(base, dirichlet=(*base.dirichlet[:-1], moved)))
    renamed = dataclasses.replace(top, name="top")
    with pytest.raises(ValueError, match=r"patterns missing: \['top_displacement'\]; patterns not in the model: "
                                         r"\['top'\]"):
        problem_scenario(model, dataclasses.replace(base, dirichlet=(*base.dirichlet[:-1], renamed)))
    # a symmetry condition (zero in training: no lifting) made nonzero
    xsym = dataclasses.replace(base.dirichlet[0], value=0.001)
    with pytest.raises(ValueError, match=r"prescribed displacement\(s\) \['xsym'\] are nonzero here"):
        problem_scenario(model, dataclasses.replace(base, dirichlet=(xsym, *base.dirichlet[1:])))
