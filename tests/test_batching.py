"""Batchings as modules: the names of configuration files mapped in one place, the default
for a dynamics and a platform, and a new strategy added in one file (the example of
docs/sweeps.md, read from the page and run) giving every member's numbers."""

from pathlib import Path
import re

import jax
import numpy as np
import optax
import pytest
import sweep_problems as sp

import ssm_jax as sj
from ssm_jax.sweeps import Map, Refill, Vmap
from ssm_jax.sweeps.batching import batching_named, default_batching

DOCS = Path(__file__).parent.parent / "docs" / "sweeps.md"


def test_names_map_to_modules_in_one_place():
    assert batching_named("auto") is None
    assert batching_named("map") == Map() and batching_named("vmap") == Vmap()
    assert batching_named("refill") == Refill()
    with pytest.raises(ValueError, match="`batching` = 'pmap' is not allowed: expected one "
                                         "of auto, map, vmap, refill"):
        batching_named("pmap")
    for batching in (Map, Vmap):  # a setting that a string would make truthy
        with pytest.raises(ValueError, match="`unroll` = 'no' is not allowed"):
            batching(unroll="no")


def test_the_default_follows_the_dynamics_and_the_platform():
    flow, train = sj.Flow(1.0), sj.Train(optax.sgd(0.1), steps=3)
    assert default_batching(flow, "cpu") == Map() == default_batching(train, "cpu")
    assert default_batching(flow, "gpu") == Refill()
    assert default_batching(train, "gpu") == Vmap()
    assert default_batching(sj.Flow(1.0, event=sj.dynamics.SteadyState(1e-3)), "gpu") == Vmap()


def _documented_strategy():
    """The `Grouped` batching of docs/sweeps.md, defined from the page's own code."""
    code = re.search(r"```python\n# sweeps/batching/grouped.py\n(.*?)```", DOCS.read_text(),
                     re.S).group(1)
    code = code.replace("from ._base", "from ssm_jax.sweeps.batching._base").replace(
        "from .memberwise", "from ssm_jax.sweeps.batching.memberwise")
    namespace = {}
    exec(compile(code, str(DOCS), "exec"), namespace)
    return namespace["Grouped"]


def test_a_strategy_in_one_new_file_gives_every_members_numbers():
    grouped = _documented_strategy()(size=4)
    reference = sp.run(batching=Map())
    ds = sp.run(batching=grouped, chunk_size=5)  # 6 members: chunks of 5 and 1, groups filled
    for name in ("loss", "class_progress", "num_steps", "status"):
        np.testing.assert_allclose(ds[name].values, reference[name].values, rtol=1e-10,
                                   err_msg=name)
    steps = ds.num_steps.values.ravel()
    assert ds.attrs["batching"] == "grouped" and 0 < ds.attrs["lane_efficiency"] <= 1
    assert ds.attrs["lane_efficiency"] < 1 or steps.min() == steps.max()


def test_chunks_end_within_about_half_a_minute_where_members_are_timed():
    from ssm_jax.sweeps.batching._base import CHUNK_SECONDS
    from ssm_jax.sweeps.execute import ChunkRunner
    from ssm_jax.sweeps.problem import as_problem
    from ssm_jax.sweeps.run import PILOT_FROM, _pilot

    assert CHUNK_SECONDS == 30.0
    assert Map().chunk_size(1, 10**9, "cpu") == 256  # untimed: the default
    assert Map().chunk_size(1, 10**9, "cpu", seconds_per_member=2.0) == 15
    assert Map().chunk_size(1, 10**9, "cpu", seconds_per_member=100.0) == 1
    assert Refill().chunk_size(1, 10**9, "cpu", seconds_per_member=0.01) == 1024
    assert Refill().chunk_size(1, 10**9, "cpu", seconds_per_member=0.1) == 300
    # The pilot is the costliest member of a large design, timed alone on a device.
    checked = type("Checked", (), {"keys": np.array([3.0, 9.0, 1.0]), "members": None})
    assert _pilot(checked, PILOT_FROM + 1) == 1 and _pilot(checked, PILOT_FROM) is None
    runner = ChunkRunner(as_problem(sp.ufm_problem), [sp.grid().point(i) for i in range(12)],
                         40, sj.Flow(300.0, num_saves=4), sj.dynamics.objective_metrics, Map())
    seconds = runner.seconds(5, jax.devices()[0])
    assert 0 < seconds < 5
