"""Closed forms and exact references for the dynamics (docs/theory.md, sections 3 to 6).

- SSM (target re-weighting), depth 2, aligned balanced start (Saxe, McClelland & Ganguli
  2014): a(t) = s / (1 + (s/a0 - 1) exp(-2 s t / n)).
- Depth N (N balanced factors, Arora et al. 2018): da/dt = (N/n) a^(2-2/N) (s - a), integrated
  here with diffrax at tight tolerances.
- UFM (loss re-weighting), square loss, class-aligned balanced start: each class's correct
  output z follows dz/dt = 2 lambda_c z (1 - z) with lambda_c = omega_c sqrt(n_c) / n, so
  z(t) = 1 / (1 + (1/z0 - 1) exp(-2 lambda_c t)).
- From a small random start the same curves hold after a short transient with an effective
  initial strength (`effective_init_strength`).
"""

import diffrax
import jax
import jax.numpy as jnp
import numpy as np

from .. import _validate
from ..data.imbalance import _check_counts, class_weights as _class_weights, labels_from_counts
from ..dynamics.flow import Flow


def _check_mode(s, init_strength, num_examples):
    """A mode's target strength s > 0, initial strength a0 > 0 and example count n > 0."""
    _validate.number("s", s, low=0.0, low_open=True)
    _validate.number("init_strength", init_strength, low=0.0, low_open=True)
    _validate.number("num_examples", num_examples, low=0.0, low_open=True)


def _check_init_output(init_output, k):
    """A class's initial correct-class output z0 > 0, a scalar or one per class."""
    if np.ndim(init_output) and np.shape(init_output) != (k,):
        raise ValueError(f"`init_output` has shape {np.shape(init_output)}, expected a scalar "
                         f"or ({k},): one value per class.")
    _validate.number("init_output", init_output, low=0.0, low_open=True)


def mode_strength(t, s, init_strength, num_examples):
    """Depth-2 mode strength a(t) from an aligned balanced start a(0) = a0 (broadcasts).

    **Arguments:**

    - `t`: the times.
    - `s`: the mode's singular value of the target, > 0.
    - `init_strength`: a0 > 0.
    - `num_examples`: n > 0, the 1/(2n) normalization of the fit.

    **Returns:** a(t), broadcast over `t`, `s` and `init_strength`.
    """
    _check_mode(s, init_strength, num_examples)
    s, a0 = jnp.asarray(s), jnp.asarray(init_strength)
    return s / (1.0 + (s / a0 - 1.0) * jnp.exp(-2.0 * s * jnp.asarray(t) / num_examples))


def half_learning_time(s, init_strength, num_examples):
    """The time a depth-2 mode reaches s/2: (n / (2 s)) ln(s/a0 - 1); arguments as for
    `mode_strength`. Negative for a0 > s/2 (the curve crossed before t = 0) and NaN for a0 > s
    (it falls towards s and never crosses)."""
    _check_mode(s, init_strength, num_examples)
    s = jnp.asarray(s)
    return num_examples / (2.0 * s) * jnp.log(s / jnp.asarray(init_strength) - 1.0)


def mode_strength_ode(ts, s, init_strength, num_examples, num_factors: int, *, rtol=1e-10,
                      atol=1e-12):
    """a(t) at times `ts` for N = `num_factors` balanced aligned factors, each mode solving
    da/dt = (N/n) a^(2-2/N) (s - a). Integrated in log a, where the solution is smooth.

    **Arguments:**

    - `ts`: the save times, increasing.
    - `s`, `init_strength`, `num_examples`: as for `mode_strength` (s, a0 > 0 per mode).
    - `num_factors`: N >= 1.
    - `rtol`, `atol`: the solver's tolerances (> 0).

    **Returns:** an array (len(ts), r) for r modes (s and a0 broadcast to r).
    """
    _validate.integer("num_factors", num_factors, minimum=1)
    _check_mode(s, init_strength, num_examples)
    ts = jnp.asarray(ts, dtype=jnp.result_type(float))
    s, a0 = jnp.broadcast_arrays(jnp.atleast_1d(s), jnp.atleast_1d(init_strength))
    N = num_factors

    def field(t, log_a, s):
        a = jnp.exp(log_a)
        return (N / num_examples) * a ** (1.0 - 2.0 / N) * (s - a)

    # In log a: the mode grows over many decades from a small start.
    flow = Flow(ts=ts, solver=diffrax.Dopri8(), rtol=rtol, atol=atol, max_steps=10**7)

    def solve(s, a0):
        sol = flow.integrate(field, jnp.log(a0), s, lambda t, log_a, s: jnp.exp(log_a))
        return sol.ys[0]

    return jax.vmap(solve, out_axes=1)(s, a0)


def class_modes(counts):
    """The modes of the one-hot label matrix Y: U = I_k, s_c = sqrt(n_c), v_c = the class
    indicator over sqrt(n_c). Returns (U, s, V)."""
    counts = _check_counts(counts)
    k = counts.size
    s = jnp.sqrt(jnp.asarray(counts, dtype=jnp.result_type(float)))
    V = jnp.eye(k, dtype=s.dtype)[labels_from_counts(counts)] / s
    return jnp.eye(k, dtype=s.dtype), s, V


def effective_init_strength(W, H, U, V):
    """The initial strength a0 that a small random start (W, H) acts like on each mode.

    Early on, WH is small and each mode's pair w = W^T u, h = H v obeys w' = (s/n) h,
    h' = (s/n) w: the part (w + h)/2 grows like exp(st/n) and w - h dies out, so
    a(t) ~ |(w0 + h0)/2|^2 exp(2st/n), the small-a0 limit of the closed form.

    **Arguments:**

    - `W`, `H`: the start, (k, d) and (d, m).
    - `U`, `V`: the target's modes, (k, r) and (m, r).

    **Returns:** a0 per mode, (r,).
    """
    if np.ndim(W) != 2 or np.ndim(H) != 2 or np.shape(W)[1] != np.shape(H)[0]:
        raise ValueError(f"`W` and `H` have shapes {np.shape(W)} and {np.shape(H)}, expected "
                         "(k, d) and (d, m): factors whose product W H is (k, m).")
    k, m = np.shape(W)[0], np.shape(H)[1]
    if np.ndim(U) != 2 or np.shape(U)[0] != k:
        raise ValueError(f"`U` has shape {np.shape(U)}, expected ({k}, r): the target's left "
                         "modes, one row per row of `W`.")
    _validate.shape("V", V, (m, np.shape(U)[1]), "the target's right modes, one row per "
                    "column of `H` and one column per mode of `U`")
    return jnp.sum(((W.T @ U) + (H @ V)) ** 2, axis=0) / 4.0


def effective_init_output(W, H, counts):
    """The initial correct-class output z0 that a small random UFM start acts like, per class:
    the class modes' effective strength over sqrt(n_c) (z_c = a_c / sqrt(n_c) on those modes).
    Use it with `ufm_class_output` and `ufm_half_learning_time`."""
    U, s, V = class_modes(counts)
    _validate.shape("W", W, (s.size, np.shape(W)[-1]), "one row per class of `counts`")
    _validate.shape("H", H, (np.shape(H)[0], V.shape[0]),
                    f"one column per example, counts.sum() = {V.shape[0]}")
    return effective_init_strength(W, H, U, V) / s


def ufm_growth_rates(counts, weights=None):
    """lambda_c = omega_c sqrt(n_c) / n: the linearized growth rate of class c's block under
    loss re-weighting. Exactly, g_c = w_c + S_c/sqrt(n_c) grows like exp(lambda_c t) and
    d_c = w_c - S_c/sqrt(n_c) decays like exp(-lambda_c t); the correct-class output grows
    like exp(2 lambda_c t) only once d_c has died out (docs/theory.md, Section 3)."""
    counts = _check_counts(counts)
    n_c = jnp.asarray(counts, dtype=jnp.result_type(float))
    if weights is not None:
        _validate.shape("weights", weights, counts.shape, "one weight per class")
        _validate.number("weights", weights, low=0.0)
    w = jnp.ones_like(n_c) if weights is None else jnp.asarray(weights)
    return w * jnp.sqrt(n_c) / n_c.sum()


def ufm_class_output(t, counts, weights, init_output):
    """Correct-class output z_c(t) of the square-loss UFM from the class-aligned balanced start
    (`UFM.aligned`): 1 / (1 + (1/z0 - 1) exp(-2 lambda_c t)). Shape (len(t), k).

    **Arguments:**

    - `t`: the times.
    - `counts`, `weights`: as for `ufm_growth_rates`.
    - `init_output`: z0 > 0, a scalar or one per class.

    **Returns:** z_c(t).
    """
    rate = ufm_growth_rates(counts, weights)
    _check_init_output(init_output, rate.size)
    z0 = jnp.asarray(init_output)
    return 1.0 / (1.0 + (1.0 / z0 - 1.0) * jnp.exp(-2.0 * rate * jnp.asarray(t)[..., None]))


def ufm_half_learning_time(counts, weights, init_output):
    """The time z_c reaches 1/2: ln(1/z0 - 1) / (2 lambda_c); arguments as for
    `ufm_class_output`. NaN where it never does: a class of weight 0, or z0 > 1 (the output
    falls towards 1)."""
    rate = ufm_growth_rates(counts, weights)
    _check_init_output(init_output, rate.size)
    time = jnp.log(1.0 / jnp.asarray(init_output) - 1.0) / (2.0 * jnp.where(rate > 0, rate, 1.0))
    return jnp.where(rate > 0, time, jnp.nan)


def learning_times(counts, power=0.0, init_strength=1e-4, *, reading: str = "target"):
    """Predicted per-class half-learning times for class weights omega ~ n_c^-power.

    **Arguments:**

    - `counts`: examples per class.
    - `power`: gamma.
    - `init_strength`: a0 (target reading: initial mode strength; loss reading: initial
      correct-class output z0), a scalar or one per class.
    - `reading`: "target" for the SSM fit of Y Omega^(1/2) (s_c = sqrt(omega_c n_c)), or "loss"
      for the loss-re-weighted UFM (rates omega_c sqrt(n_c)/n).

    **Returns:** the times, shape (k,).
    """
    _validate.choice("reading", reading, ("target", "loss"))
    counts = _check_counts(counts)
    if np.ndim(init_strength) and np.shape(init_strength) != counts.shape:
        raise ValueError(f"`init_strength` has shape {np.shape(init_strength)}, expected a "
                         f"scalar or {counts.shape}: one value per class.")
    _validate.number("init_strength", init_strength, low=0.0, low_open=True)
    weights = _class_weights(counts, power)
    if reading == "loss":
        return ufm_half_learning_time(counts, weights, init_strength)
    s = jnp.sqrt(weights * counts)
    return half_learning_time(s, init_strength, counts.sum())


def learning_time_ratio(counts, power=0.0, init_strength=1e-4, *, reading: str = "target"):
    """Predicted t_minority / t_majority: the smallest class's learning time over the
    largest's (> 1: minorities learned later)."""
    counts = _check_counts(counts)
    times = learning_times(counts, power, init_strength, reading=reading)
    # jnp's argmin: counts may be traced (a sweep's closed forms under one vmap).
    return times[jnp.argmin(counts)] / times[jnp.argmax(counts)]
