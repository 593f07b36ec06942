"""Class weights that change with time: constant, switched at a time, or ramped.

Re-weighting matters early and fades late, so practitioners change the weights during
training: deferred re-weighting trains with ERM and switches the weights on later (LDAM-DRW,
Cao et al. 2019), and a ramp moves between two weightings gradually. A schedule maps time
(flow time, or the step count of discrete training) to class weights omega(t), shape (k,);
`Objective(..., class_weights=schedule)` accepts one wherever it accepts an array.

Weights and times are array leaves, so a sweep over the switch time or the weights compiles
once. The kind of schedule is part of the compiled structure: to compare a constant weighting
with switched ones in one compilation, write it as a switch between equal weights.

`jump_times` are the times where the weights jump or kink; the flow steps exactly onto them
(`diffrax.ClipStepSizeController(jump_ts=...)`), so a switch costs no accuracy.
"""

import abc

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float
import numpy as np

from . import _validate
from .data.imbalance import check_class_weights


def _weights(name: str, weights) -> Float[Array, " k"]:
    if np.ndim(weights) != 1 or np.shape(weights)[0] < 2:
        raise ValueError(f"`{name}` has shape {np.shape(weights)}, expected (k,): one weight "
                         "per class, k >= 2.")
    _validate.number(name, weights, low=0.0)
    if _validate.is_concrete(weights) and not np.any(np.asarray(weights) > 0):
        raise ValueError(f"`{name}` are all zero: at least one must be positive.")
    return jnp.asarray(weights, dtype=jnp.result_type(float))


def _time(name: str, value) -> Float[Array, ""]:
    if np.ndim(value):
        raise ValueError(f"`{name}` has shape {np.shape(value)}, expected a scalar time.")
    _validate.number(name, value, low=0.0)
    return jnp.asarray(value, dtype=jnp.result_type(float))


def _same_classes(before, after):
    if before.shape != after.shape:
        raise ValueError(f"`before` has shape {before.shape} and `after` has shape "
                         f"{after.shape}: expected one weight per class in both, (k,).")


class AbstractWeightSchedule(eqx.Module):
    """Class weights omega(t) as a function of time t >= 0.

    A new schedule provides:

    - `__call__(t)`: the weights at time t, (k,);
    - `jump_times()`: the times where the weights jump or kink, which the flow steps onto;
    - `weight_sets()`: the sets of weights it moves between; every weight it takes is a convex
      combination of them, so checking them checks the schedule.

    Every numeric field should be an array leaf, so that a sweep over it compiles once.
    """

    @abc.abstractmethod
    def __call__(self, t) -> Float[Array, " k"]:
        """The class weights at time `t`.

        **Arguments:**

        - `t`: the time: flow time, or the step count of discrete training.

        **Returns:** omega(t), (k,).
        """

    @abc.abstractmethod
    def jump_times(self) -> Float[Array, " j"]:
        """The times where the weights jump or kink, (j,); (0,) for none."""

    @abc.abstractmethod
    def weight_sets(self) -> Float[Array, "m k"]:
        """The sets of weights the schedule moves between, (m, k)."""


class ConstantWeights(AbstractWeightSchedule):
    """The same class weights at every time, as an array `class_weights` gives.

    **Arguments:**

    - `weights`: omega, (k,), finite, >= 0, not all zero; e.g. `class_weights(counts, 1.0)`.
    """

    weights: Float[Array, " k"]

    def __init__(self, weights):
        self.weights = _weights("weights", weights)

    def __call__(self, t):
        return self.weights

    def jump_times(self):
        return jnp.zeros((0,), dtype=self.weights.dtype)

    def weight_sets(self):
        return self.weights[None]


class SwitchedWeights(AbstractWeightSchedule):
    """`before` until `switch_time`, `after` from then on: deferred re-weighting (DRW; Cao
    et al. 2019) with `before` = ERM's ones and `after` = e.g. `class_weights(counts, 1.0)`.

    In discrete training the step from step count s to s + 1 descends with `after` when
    s >= `switch_time`, so a switch at step s is s steps with `before`, then `after`.

    **Arguments:**

    - `before`, `after`: the class weights, (k,) each, finite, >= 0, not all zero.
    - `switch_time`: t_s >= 0, a scalar.
    """

    before: Float[Array, " k"]
    after: Float[Array, " k"]
    switch_time: Float[Array, ""]

    def __init__(self, before, after, switch_time):
        self.before = _weights("before", before)
        self.after = _weights("after", after)
        _same_classes(self.before, self.after)
        self.switch_time = _time("switch_time", switch_time)

    def __call__(self, t):
        return jnp.where(t < self.switch_time, self.before, self.after)

    def jump_times(self):
        return self.switch_time[None]

    def weight_sets(self):
        return jnp.stack([self.before, self.after])


class RampedWeights(AbstractWeightSchedule):
    """`before` until `start`, then linearly to `after` at `end`, and `after` from then on:
    omega(t) = before + clip((t - start) / (end - start), 0, 1) (after - before).

    **Arguments:**

    - `before`, `after`: the class weights, (k,) each, finite, >= 0, not all zero.
    - `start`, `end`: the ramp's ends, 0 <= start < end, scalars.
    """

    before: Float[Array, " k"]
    after: Float[Array, " k"]
    start: Float[Array, ""]
    end: Float[Array, ""]

    def __init__(self, before, after, start, end):
        self.before = _weights("before", before)
        self.after = _weights("after", after)
        _same_classes(self.before, self.after)
        self.start = _time("start", start)
        self.end = _time("end", end)
        if _validate.is_concrete((self.start, self.end)) and not self.start < self.end:
            raise ValueError(f"`end` = {float(self.end)!r} is not allowed with `start` = "
                             f"{float(self.start)!r}: expected start < end.")

    def __call__(self, t):
        fraction = jnp.clip((t - self.start) / (self.end - self.start), 0.0, 1.0)
        return self.before + fraction * (self.after - self.before)

    def jump_times(self):
        return jnp.stack([self.start, self.end])

    def weight_sets(self):
        return jnp.stack([self.before, self.after])


def weight_schedule(class_weights, num_classes: int) -> AbstractWeightSchedule:
    """Class weights as a schedule, checked against the number of classes.

    **Arguments:**

    - `class_weights`: None (all ones), an array (k,) (constant weights), or an
      `AbstractWeightSchedule`.
    - `num_classes`: k.

    **Returns:** an `AbstractWeightSchedule` of k classes.
    """
    if class_weights is None:
        return ConstantWeights(jnp.ones(num_classes, dtype=jnp.result_type(float)))
    if not isinstance(class_weights, AbstractWeightSchedule):
        return ConstantWeights(check_class_weights(class_weights, num_classes))
    given = class_weights.weight_sets().shape[-1]
    if given != num_classes:
        raise ValueError(f"`class_weights` = {type(class_weights).__name__} of {given} classes "
                         f"is not allowed: the labels have {num_classes} classes, expected one "
                         "weight per class.")
    return class_weights
