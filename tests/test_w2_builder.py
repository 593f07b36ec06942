"""The vectorized W2 builder of `benchmarks/w2_class_ssm.py` builds the same problems as
`imbalance_problem(model="ssm_class")`, so its throughput numbers are for the real workload."""

import importlib.util
from pathlib import Path

import jax.numpy as jnp
import numpy as np

from ssm_jax import StepImbalance

_path = Path(__file__).parents[1] / "benchmarks" / "w2_class_ssm.py"
_spec = importlib.util.spec_from_file_location("w2_class_ssm", _path)
w2 = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(w2)


def test_step_counts_round_like_python():
    # 1.25 * 10 = 12.5 and 1.35 * 10 = 13.5: half-way cases round to even, as `round` does.
    for ratio in (1.0, 1.25, 1.35, 7.3, 99.96):
        expected = StepImbalance(6, ratio, w2.MINORITY, w2.RHO).counts
        np.testing.assert_array_equal(np.asarray(w2.step_counts(jnp.asarray(ratio), 6)),
                                      expected)


def test_builder_matches_imbalance_problem():
    configs = w2.w2_configs(5, seed=3)
    w2.check_builder(configs, k=4, dim=3, members=range(5))
