"""Workload W1, shared by the benchmarks in this folder.

W1: UFM, square loss, k = 10, d = 32, n_min = 10, rho = 0.5, R ~ U[1, 100] (ragged n, padded to
the largest with zero-weight examples), gamma ~ U[0, 1] (omega_c ~ n_c^-gamma), rtol 1e-4,
atol 1e-6, 100 saves on [0, t1]. Also here: the naive `jax.vmap(diffrax.diffeqsolve)` baseline,
the timing helper, the problem as plain arrays with its analytic gradient, the scipy loop and
the float64 reference, so that every script measures them the same way.
"""

import time

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from scipy.integrate import solve_ivp

import ssm_jax as sj
from ssm_jax import losses
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


def naive_solve(params, objectives, static, ts, progress, rtol=RTOL, atol=ATOL,
                max_steps=100_000):
    """`jax.vmap(diffrax.diffeqsolve)` written the obvious way (diffrax's default RMS-norm PID
    controller, diffrax's own Tsit5) on members stacked along a leading axis, compiled ahead
    of time. `progress(model, objective)` is what is saved. Returns a function of no
    arguments giving the saves (B, T, ...) and each member's step count."""

    @jax.jit
    @jax.vmap
    def naive(p, objective):
        def field(t, y, args):
            grad = jax.grad(lambda q: args(eqx.combine(q, static)))(y)
            return jax.tree.map(jnp.negative, grad)

        sol = diffrax.diffeqsolve(
            diffrax.ODETerm(field), diffrax.Tsit5(), ts[0], ts[-1], None, p, objective,
            saveat=diffrax.SaveAt(ts=ts, fn=lambda t, y, a: progress(eqx.combine(y, static), a)),
            stepsize_controller=diffrax.PIDController(rtol=rtol, atol=atol),
            max_steps=max_steps)
        return sol.ys, sol.stats["num_steps"]

    compiled = naive.lower(params, objectives).compile()
    return lambda: compiled(params, objectives)


def naive_vmap(problems, ts):
    """`naive_solve` of W1's padded problems (a list of (model, objective)), saving the class
    progress (B, T, k)."""
    params = [eqx.filter(m, eqx.is_inexact_array) for m, _ in problems]
    static = eqx.partition(problems[0][0], eqx.is_inexact_array)[1]
    stack = lambda xs: jax.tree.map(lambda *a: jnp.stack(a), *xs)
    return naive_solve(stack(params), stack([o for _, o in problems]), static, ts,
                       lambda model, objective: objective.metrics(model)["class_progress"])


# ---- the problem as plain arrays (numpy; the gradient also serves torch), scipy, reference ----

def member_arrays(model, objective):
    """(W, H, Y, q/n) of one ssm_jax UFM problem, as float64 numpy arrays."""
    loss = objective.loss
    assert model.b is None and float(objective.l2) == 0.0
    assert isinstance(loss, losses.Square) and not loss.center
    labels = np.asarray(objective.labels)
    Y = (labels[None, :] == np.arange(objective.num_classes)[:, None]).astype(np.float64)
    # q_i = omega_{y_i} times the example weight (0 on padding)
    qn = np.asarray(objective.weights(), np.float64) / float(objective.num_examples)
    return np.asarray(model.W, np.float64), np.asarray(model.H, np.float64), Y, qn


def gradient(W, H, Y, qn):
    """dL/dW, dL/dH, analytic; numpy or torch, one member or a batch (leading axes)."""
    R = (W @ H - Y) * qn[..., None, :]
    return R @ H.swapaxes(-1, -2), W.swapaxes(-1, -2) @ R


def progress(W, H, Y):
    """Class progress: the mean correct-class output of each class, w_c . mean_{i in c} h_i."""
    return (W * (H @ Y.swapaxes(-1, -2)).swapaxes(-1, -2)).sum(-1) / Y.sum(-1)


def to_float64(tree):
    return jax.tree.map(lambda x: jnp.asarray(x, jnp.float64) if eqx.is_inexact_array(x) else x,
                        tree)


def reference(problems, ts):
    """Tight float64 flow of every member from its float32 start (one compilation)."""
    with jax.enable_x64(True):
        ts = jnp.asarray(ts, jnp.float64)
        out = [sj.gradient_flow(*to_float64(p), ts=ts, solver=diffrax.Dopri8(), rtol=1e-10,
                                atol=1e-12) for p in problems]
        return np.stack([np.asarray(o.metrics["class_progress"]) for o in out])


def scipy_member(W0, H0, Y, qn, ts, rtol=RTOL, atol=ATOL):
    (k, d), n = W0.shape, H0.shape[1]

    def field(t, y):
        gW, gH = gradient(y[:k * d].reshape(k, d), y[k * d:].reshape(d, n), Y, qn)
        return -np.concatenate([gW.ravel(), gH.ravel()])

    sol = solve_ivp(field, (ts[0], ts[-1]), np.concatenate([W0.ravel(), H0.ravel()]),
                    method="RK45", t_eval=ts, rtol=rtol, atol=atol)
    ys = sol.y.T
    return progress(ys[:, :k * d].reshape(-1, k, d), ys[:, k * d:].reshape(-1, d, n), Y), sol.nfev


def scipy_path(members, ts, rtol=RTOL, atol=ATOL):
    """One `solve_ivp` per member in a Python loop, on the unpadded problem, at tolerances
    `rtol` and `atol` (W1's by default)."""
    out, evals = zip(*[scipy_member(*m, ts, rtol, atol) for m in members], strict=True)
    return np.stack(out), float(np.mean(evals))
