"""The built-in laws' kernels come from numba's disk cache in a new process (no compilation).

A kernel made as a closure (``point_loop``) is compiled again in every process: numba keys a
closure in its cache by the pickled dispatcher it captures, which holds a per-process uuid. That
cost ~1 s per process for CalculiX's law (every ``romdask predict``, every Dask worker).
"""

import json
import subprocess
import sys

import pytest

CODE = """
import json, numpy as np
from romdask.materials import {cls}
from romdask.materials.{module} import {module}_kernel as kernel
law = {cls}(**{kwargs})
law.integrate(np.full((4, 6), 1e-4), law.initial_state(4), 0.1, 0.1)
print(json.dumps({{"hits": sum(kernel.stats.cache_hits.values()), "misses": sum(kernel.stats.cache_misses.values())}}))
"""


@pytest.mark.parametrize("module, cls, kwargs", [
    ("calculix", "CalculixViscoplastic", {"young": 200e3, "poisson": 0.3, "plastic": [[200.0, 0.0], [300.0, 0.1]],
                                          "norton": (1e-12, 4.0, 0.0)}),
    ("elastic", "LinearElastic", {"young": 200e3, "poisson": 0.3}),
    ("chaboche", "Chaboche", {}),
])
def test_a_law_kernel_is_loaded_from_the_disk_cache_in_a_new_process(module, cls, kwargs):
    code = CODE.format(module=module, cls=cls, kwargs=kwargs)
    runs = [json.loads(subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
                       .stdout.strip().splitlines()[-1]) for _ in range(2)]
    # the first process may compile (a fresh checkout); the second must load what it saved
    assert runs[1] == {"hits": 1, "misses": 0}, runs
