"""Metrics recorded along a trajectory: per-class means (of accuracy, loss, correct-class output
and progress); mode strengths; and learning times read off the recorded curves.

Per-class means go through one-hot label matrices, so an example whose label is -1 (padding)
belongs to no class and changes no metric.
"""

import jax.numpy as jnp
from jaxtyping import Array, Float, Int
import numpy as np

from .. import _validate


def class_means(values: Float[Array, " n"], labels: Int[Array, " n"], num_classes: int):
    """The mean of `values` over each class's examples, shape (k,). Empty classes give NaN.

    **Arguments:**

    - `values`: one value per example, (n,).
    - `labels`: the class of each example, (n,); -1 (padding) belongs to no class.
    - `num_classes`: k >= 1.

    **Returns:** the means, (k,).
    """
    _validate.integer("num_classes", num_classes, minimum=1)
    _validate.shape("values", values, np.shape(labels), "one value per label")
    onehot = labels[:, None] == jnp.arange(num_classes)
    total = jnp.sum(jnp.where(onehot, values[:, None], 0.0), axis=0)
    return total / jnp.sum(onehot, axis=0)


def mode_strengths(output_matrix: Float[Array, "k m"], U: Float[Array, "k r"],
                   V: Float[Array, "m r"]) -> Float[Array, " r"]:
    """a_i = u_i^T Z v_i: the strength of the output matrix along each target mode.

    **Arguments:**

    - `output_matrix`: Z, (k, m).
    - `U`, `V`: the target's modes, (k, r) and (m, r).

    **Returns:** the strengths, (r,).
    """
    if np.ndim(output_matrix) != 2 or np.ndim(U) != 2:
        raise ValueError(f"`output_matrix` and `U` have shapes {np.shape(output_matrix)} and "
                         f"{np.shape(U)}, expected matrices (k, m) and (k, r).")
    (k, m), r = np.shape(output_matrix), np.shape(U)[1]
    _validate.shape("U", U, (k, r), "one row per row of the output matrix")
    _validate.shape("V", V, (m, r), "one row per column of the output matrix")
    return jnp.sum(U * (output_matrix @ V), axis=0)


def learning_time(ts: Float[Array, " T"], progress: Float[Array, "T ..."], level=0.5,
                  status=None):
    """The first time each curve in `progress` (time on axis 0) reaches `level`, located by
    linear interpolation between save times. NaN where it never does within `ts`, and for
    every class of a run that did not end ok: its curves stop being recorded (max_steps) or
    mean nothing (nonfinite), so no time read off them is a learning time.

    **Arguments:**

    - `ts`: save times, increasing.
    - `progress`: recorded curves, e.g. `metrics["class_progress"]` (T, k) or mode strengths
      divided by their targets; (T, runs, k) for a batch of runs.
    - `level`: the crossing level, in (0, 1); 1/2 gives half-learning times.
    - `status`: the runs' status codes (`dynamics.trajectory.STATUS`, 0 is ok), a scalar or
      one per run (the leading axes of progress.shape[1:]); None where all ended ok.

    **Returns:** an array of progress.shape[1:].
    """
    _validate.number("level", level, low=0.0, high=1.0, low_open=True, high_open=True)
    if np.ndim(ts) != 1 or np.ndim(progress) < 1 or np.shape(progress)[0] != np.shape(ts)[0]:
        raise ValueError(f"`ts` and `progress` have shapes {np.shape(ts)} and "
                         f"{np.shape(progress)}: expected (T,) and (T, ...), one row of "
                         "progress per save time.")
    ts = jnp.asarray(ts)
    progress = jnp.asarray(progress)
    above = progress >= level
    j = jnp.argmax(above, axis=0)
    previous = jnp.maximum(j - 1, 0)
    p0 = jnp.take_along_axis(progress, previous[None], axis=0)[0]
    p1 = jnp.take_along_axis(progress, j[None], axis=0)[0]
    t0, t1 = ts[previous], ts[j]
    fraction = jnp.where(p1 > p0, (level - p0) / jnp.where(p1 > p0, p1 - p0, 1.0), 0.0)
    crossing = jnp.where(j == 0, ts[0], t0 + jnp.clip(fraction, 0.0, 1.0) * (t1 - t0))
    times = jnp.where(jnp.any(above, axis=0), crossing, jnp.nan)
    if status is None:
        return times
    status = jnp.asarray(status)
    if status.ndim > times.ndim or status.shape != times.shape[:status.ndim]:
        raise ValueError(f"`status` has shape {status.shape}: expected a scalar or one code "
                         f"per run, the leading axes of the learning times' {times.shape}.")
    ok = jnp.reshape(status == 0, status.shape + (1,) * (times.ndim - status.ndim))
    return jnp.where(ok, times, jnp.nan)
