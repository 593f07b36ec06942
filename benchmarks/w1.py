"""Workload W1, shared by the benchmarks in this folder.

W1: UFM, square loss, k = 10, d = 32, n_min = 10, rho = 0.5, R ~ U[1, 100] (ragged n, padded to
the largest with zero-weight examples), gamma ~ U[0, 1] (omega_c ~ n_c^-gamma), rtol 1e-4,
atol 1e-6, 100 saves on [0, t1]. Also here: the naive `jax.vmap(diffrax.diffeqsolve)` baseline
and the timing helper, so that every script measures them the same way.
"""

import time

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ssm_jax.sweeps.padding import pad_examples
from ssm_jax.sweeps.problems import imbalance_problem

RTOL, ATOL, SAVES = 1e-4, 1e-6, 100


def w1_points(batch: int, seed: int = 0):
    """`batch` W1 members: ratio R ~ U[1, 100], power gamma ~ U[0, 1], member i seeded by i."""
    rng = np.random.default_rng(seed)
    return [dict(ratio=float(r), power=float(g), seed=i) for i, (r, g) in
            enumerate(zip(rng.uniform(1, 100, batch), rng.uniform(0, 1, batch), strict=True))]


def make_problem(ratio, power, seed):
    return imbalance_problem(model="ufm", loss="square", num_classes=10, ratio=ratio,
                             minority_size=10, dim=32, init_scale=1e-3, power=power, seed=seed)


def padded_problems(points):
    """Every member's (model, objective), padded to the largest number of examples n_max."""
    problems = [make_problem(**p) for p in points]
    n_max = max(int(o.labels.shape[0]) for _, o in problems)
    return [tuple(pad_examples(x, n_max) for x in p) for p in problems], n_max


def timed(fn, repeats=1, warmup=True):
    """Mean seconds of `fn()` over `repeats` runs, and the last output. `warmup`: True runs
    `fn` once first (compilation), False does not (compiled ahead), or a cheaper function to
    run first instead (first-call costs only)."""
    if callable(warmup):
        warmup()
    elif warmup:
        fn()
    start = time.perf_counter()
    for _ in range(repeats):
        out = jax.block_until_ready(fn())
    return (time.perf_counter() - start) / repeats, out


def naive_vmap(problems, ts):
    """`jax.vmap(diffrax.diffeqsolve)` written the obvious way (diffrax's default RMS-norm PID
    controller), compiled ahead of time. Returns a function of no arguments giving the class
    progress (B, T, k) and each member's step count."""
    params = [eqx.filter(m, eqx.is_inexact_array) for m, _ in problems]
    static = eqx.partition(problems[0][0], eqx.is_inexact_array)[1]
    stack = lambda xs: jax.tree.map(lambda *a: jnp.stack(a), *xs)
    batch_params, batch_objectives = stack(params), stack([o for _, o in problems])

    @jax.jit
    @jax.vmap
    def naive(p, objective):
        def field(t, y, args):
            grad = jax.grad(lambda q: args(eqx.combine(q, static)))(y)
            return jax.tree.map(jnp.negative, grad)

        sol = diffrax.diffeqsolve(
            diffrax.ODETerm(field), diffrax.Tsit5(), ts[0], ts[-1], None, p, objective,
            saveat=diffrax.SaveAt(ts=ts, fn=lambda t, y, a: a.metrics(
                eqx.combine(y, static))["class_progress"]),
            stepsize_controller=diffrax.PIDController(rtol=RTOL, atol=ATOL), max_steps=100_000)
        return sol.ys, sol.stats["num_steps"]

    compiled = naive.lower(batch_params, batch_objectives).compile()
    return lambda: compiled(batch_params, batch_objectives)
