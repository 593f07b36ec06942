"""Benchmark problems whose solutions are known: closed forms, a scalar mode ODE, or a tight
float64 reference, each recorded as one observable at fixed save times.

A solver's error on a problem is the largest deviation of its observable from the reference
over all save times, relative to the largest reference entry (so one scale fits every problem).
"""

from collections.abc import Callable
import dataclasses

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .. import analytic, losses
from ..data import gaussian_blobs, importance_weights
from ..data.imbalance import StepImbalance, class_weights, label_matrix, labels_from_counts
from ..dynamics.base import compiled_run
from ..dynamics.flow import Flow
from ..models import SSM, UFM, DeepLinear, Linear, target_modes
from ..objective import Objective, TargetFit


@dataclasses.dataclass(frozen=True)
class BenchProblem:
    """A gradient flow with a known solution.

    - `model`, `objective`: the flow, in float64.
    - `ts`: save times (the flow runs from ts[0] to ts[-1]).
    - `observe`: (model, objective) -> the array compared with `reference` at each save time.
    - `reference`: (len(ts), ...) float64 values of the observable.
    - `reference_kind`: how the reference was obtained, in words.
    - `stiff`: whether explicit solvers are expected to be stability-bound.
    """

    name: str
    description: str
    model: eqx.Module
    objective: eqx.Module
    ts: jax.Array
    observe: Callable
    reference: np.ndarray
    reference_kind: str
    stiff: bool = False

    def error(self, observed) -> float:
        """max |observed - reference| / max |reference| over all save times (NaN if the run
        produced non-finite values: it did not reach them)."""
        observed = np.asarray(observed, dtype=np.float64)
        if not np.all(np.isfinite(observed)):
            return float("nan")
        return float(np.max(np.abs(observed - self.reference)) / np.max(np.abs(self.reference)))


# Observables are module-level functions: a new function object would be a new compilation.
def outputs(model, objective):
    """The model's outputs (logits) on the objective's inputs."""
    return model(getattr(objective, "inputs", None))


def end_to_end(model, objective):
    """A deep linear network's product matrix."""
    return model.end_to_end


def linear_weight(model, objective):
    """A linear model's weight vector."""
    return model.weight


def _tight_reference(model, objective, ts, observe, solver=None, rtol=1e-12, atol=1e-14):
    """The observable along a float64 flow at tight tolerances: Dopri8 unless `solver`."""
    params, static = eqx.partition(model, eqx.is_inexact_array)
    dynamics = Flow(ts=ts, solver=solver or diffrax.Dopri8(), rtol=rtol, atol=atol,
                    max_steps=10**7)
    recorded, _, stats = compiled_run(dynamics, params, static, objective, None, observe, False,
                                      {})
    if int(stats["status"]) != 0:
        raise RuntimeError("The reference solve did not finish: check the problem.")
    return np.asarray(recorded)


def _check_x64():
    if not jax.config.jax_enable_x64:
        raise ValueError("Benchmark problems and their references are float64: enable it first "
                         "with jax.config.update('jax_enable_x64', True).")


def ssm_closed_form() -> BenchProblem:
    """The example-level SSM from an aligned balanced start: a_i(t) in closed form."""
    counts = StepImbalance(4, 10.0, 2).counts
    target = label_matrix(counts, class_weights(counts, 0.0))
    a0, n = 1e-3, float(counts.sum())
    ts = jnp.linspace(0.0, 300.0, 61)
    U, s, V = (np.asarray(x) for x in target_modes(target))
    a = np.asarray(analytic.mode_strength(np.asarray(ts)[:, None], s, a0, n))
    reference = np.einsum("kr,tr,mr->tmk", U, a, V)  # the SSM outputs (W H)^T
    return BenchProblem("ssm_closed_form", "SSM, k = 4, R = 10, ERM, aligned start",
                        SSM.aligned(target, 6, a0), TargetFit(target), ts, outputs, reference,
                        "closed form a_i(t) (Saxe et al.)")


def deep_linear_mode_ode(depth: int = 4) -> BenchProblem:
    """A depth-L linear network on whitened inputs from an aligned balanced start: each mode
    follows the scalar mode ODE."""
    counts = np.array([12, 12, 3])
    labels = labels_from_counts(counts)
    X, _ = np.linalg.qr(np.random.default_rng(0).normal(size=(labels.size, 6)))
    target = np.eye(counts.size)[:, labels] @ X
    a0 = 0.05
    ts = jnp.linspace(0.0, 200.0, 41)
    U, s, V = (np.asarray(x) for x in target_modes(target))
    a = np.asarray(analytic.mode_strength_ode(ts, s, a0, labels.size, depth, rtol=1e-13,
                                              atol=1e-15))
    return BenchProblem(f"deep_linear_L{depth}", f"DeepLinear, L = {depth}, k = 3, aligned start",
                        DeepLinear.aligned(target, 4, depth, a0),
                        Objective(labels, losses.square, inputs=X), ts, end_to_end,
                        np.einsum("kr,tr,pr->tkp", U, a, V),
                        "scalar mode ODE per mode (Dopri8, rtol 1e-13)")


def ufm_cross_entropy(ratio: float = 10.0) -> BenchProblem:
    """The UFM with cross-entropy from a Gaussian start: no closed form."""
    spec = StepImbalance(4, ratio, 2)
    model = UFM(spec.counts, 8, init_scale=0.1, key=jax.random.key(0))
    objective = Objective(spec.labels, losses.cross_entropy)
    ts = jnp.linspace(0.0, 200.0, 41)
    return BenchProblem(f"ufm_ce_R{ratio:g}", f"UFM, cross-entropy, k = 4, R = {ratio:g}",
                        model, objective, ts, outputs,
                        _tight_reference(model, objective, ts, outputs),
                        "float64 Dopri8, rtol 1e-12")


def ufm_square_l2(ratio: float = 20.0, l2: float = 1e-3) -> BenchProblem:
    """Large R with L2 over a long horizon (100 / lambda): after the fit the flow creeps to the
    regularized minimum at rates ~ lambda while the fastest modes stay fast (mildly stiff)."""
    spec = StepImbalance(4, ratio, 1)
    model = UFM(spec.counts, 4, init_scale=0.1, key=jax.random.key(0))
    objective = Objective(spec.labels, losses.square, l2=l2)
    # log-spaced saves: the error is measured over the fit as well as the slow creep
    ts = jnp.concatenate([jnp.zeros(1), jnp.geomspace(1e-1, 100.0 / l2, 41)])
    return BenchProblem(f"ufm_square_R{ratio:g}_l2", f"UFM, square, R = {ratio:g}, "
                        f"lambda = {l2:g}, to t = {float(ts[-1]):g}", model, objective, ts,
                        outputs, _tight_reference(model, objective, ts, outputs),
                        "float64 Dopri8, rtol 1e-12", stiff=True)


def separable_logistic(l2: float = 0.0, t1: float = 1e8) -> BenchProblem:
    """Importance-weighted logistic regression on separable blobs, to t = 1e8 on log-spaced
    saves. With lambda = 0 the norm grows like log t and steps can grow with t; with lambda > 0
    the flow rests at the regularized optimum, where an explicit solver's step stays bounded
    by stability (stiff)."""
    X, y = gaussian_blobs(jax.random.key(0), 15, 5, dim=5, separation=3.0)
    objective = Objective(y, losses.logistic, example_weights=importance_weights(y, 4.0),
                          inputs=X, l2=l2)
    ts = jnp.concatenate([jnp.zeros(1), jnp.geomspace(1e-2, t1, 41)])
    name = "separable_logistic" + ("_l2" if l2 else "")
    solver, tol = (diffrax.Kvaerno5(), 1e-11) if l2 else (diffrax.Dopri8(), 1e-12)
    return BenchProblem(name, f"logistic, weights 4:1, lambda = {l2:g}, to t = {t1:g}",
                        Linear(5), objective, ts, linear_weight,
                        _tight_reference(Linear(5), objective, ts, linear_weight, solver,
                                         tol, tol * 1e-2),
                        f"float64 {type(solver).__name__}, rtol {tol:g}", stiff=l2 > 0)


PROBLEMS = {
    "ssm_closed_form": ssm_closed_form,
    "deep_linear_L4": deep_linear_mode_ode,
    "ufm_ce_R10": ufm_cross_entropy,
    "separable_logistic": separable_logistic,
    "separable_logistic_l2": lambda: separable_logistic(l2=1e-3),
    "ufm_square_R20_l2": ufm_square_l2,
}


def bench_problem(name: str) -> BenchProblem:
    """The named problem of `PROBLEMS`, built in float64 with its reference."""
    if name not in PROBLEMS:
        raise ValueError(f"`problem` = {name!r} is not allowed: choose from {sorted(PROBLEMS)}.")
    _check_x64()
    return PROBLEMS[name]()
