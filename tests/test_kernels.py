"""Kernels per loop iteration, counted from compiled HLO text: the counter itself, and the
refill lanes' iteration held under a bound (the count `benchmarks/README.md` reports)."""

import equinox as eqx
import jax
import jax.numpy as jnp
import pytest

import ssm_jax as sj
from ssm_jax.bench.kernels import compiled_loop_kernels, loop_kernels
from ssm_jax.dynamics import Flat, refill, refill_loop
from ssm_jax.sweeps.problems import imbalance_problem

REFILL_KERNELS = 100
"""Most kernels one Tsit5 refill iteration may launch itself (94 measured with `Flat()` on
XLA:CPU, jax 0.10.2: of them 18 matrix products, three per evaluation of the field)."""


def test_loop_kernels_counts_the_body_of_the_loop():
    def body(i, x):
        return jnp.cumsum(jnp.sin(x) @ x.T, axis=0)  # a product, then a reduction

    kernels = compiled_loop_kernels(lambda n, x: jax.lax.fori_loop(0, n, body, x), 3,
                                    jnp.ones((4, 4)))
    assert 2 <= kernels.body <= 8 and kernels.nested == 0
    assert sum(kernels.opcodes.values()) == kernels.body
    with pytest.raises(ValueError, match="no while loop"):
        loop_kernels(jax.jit(jnp.sin).lower(1.0).compile().as_text())


def test_a_refill_iteration_stays_under_its_kernel_bound():
    members = [imbalance_problem(model="ssm_class", ratio=r, seed=i, dim=2, num_classes=2,
                                 minority_size=1) for i, r in enumerate((1.0, 2.0))]
    parts = [eqx.partition(model, eqx.is_inexact_array) for model, _ in members]
    params = jax.tree.map(lambda *xs: jnp.stack(xs), *[p for p, _ in parts])
    objective = jax.tree.map(lambda *xs: jnp.stack(xs), *[o for _, o in members])
    state = refill.refill_start(sj.Flow(1.0, num_saves=2), params, parts[0][1], objective,
                                lambda model, objective: {"loss": objective(model)},
                                num_lanes=2, layout=Flat())
    dynamic, static = eqx.partition(state, eqx.is_array)
    kernels = compiled_loop_kernels(lambda d: eqx.filter(
        refill_loop.advance(eqx.combine(d, static), 1), eqx.is_array), dynamic)
    assert kernels.body <= REFILL_KERNELS, kernels.opcodes
