"""Padding to a common number of examples, so that problems of different sizes share one
compilation and one batch.

Padded examples carry zero weight and a label of no class (the loss's `padding_label`; -1 for
a target fit): they receive no gradient, contribute nothing to the objective, and belong to no
class in the metrics. Free per-example parameters (UFM features) are padded with zero columns,
which stay zero under the flow. Together with a padding-invariant error norm in the step-size
controller, a padded run takes the very same steps as the unpadded one.
"""

import functools

import equinox as eqx
import jax.numpy as jnp

from ..models import SSM, UFM, DeepLinear
from ..models._base import AbstractModel
from ..objective import Objective, TargetFit


def _pad_axis(x, size: int, axis: int, value=0):
    widths = [(0, 0)] * x.ndim
    widths[axis] = (0, size - x.shape[axis])
    return jnp.pad(x, widths, constant_values=value)


@functools.singledispatch
def pad_examples(obj, size: int):
    """`obj` padded to `size` examples.

    Models without per-example parameters are returned as they are; register a padding for a
    new free-feature model with `pad_examples.register`.

    **Arguments:**

    - `obj`: an objective (`Objective`, `TargetFit`) or a model.
    - `size`: the number of examples after padding, at least the current number.

    **Returns:** an object of the same type whose per-example arrays have `size` entries.
    """
    if isinstance(obj, AbstractModel):
        return obj
    raise TypeError(f"Cannot pad {type(obj).__name__} to more examples: register a padding "
                    "with ssm_jax.sweeps.pad_examples.register.")


@pad_examples.register
def _(obj: Objective, size: int):
    # Class weights (constant or on a schedule) are per class: padding leaves them as they are.
    labels = _pad_axis(obj.labels, size, 0, obj.loss.padding_label)
    weights = _pad_axis(obj.example_weights, size, 0)
    inputs = None if obj.inputs is None else _pad_axis(obj.inputs, size, 0)
    return eqx.tree_at(lambda o: (o.labels, o.example_weights, o.inputs), obj,
                       (labels, weights, inputs), is_leaf=lambda x: x is None)


@pad_examples.register
def _(obj: TargetFit, size: int):
    U, s, V = obj.modes
    return eqx.tree_at(
        lambda o: (o.target, o.labels, o.modes), obj,
        (_pad_axis(obj.target, size, 1), _pad_axis(obj.labels, size, 0, -1),
         (U, s, _pad_axis(V, size, 0))),
    )


@pad_examples.register
def _(model: UFM, size: int):
    return eqx.tree_at(lambda m: m.H, model, _pad_axis(model.H, size, 1))


@pad_examples.register
def _(model: SSM, size: int):
    return eqx.tree_at(lambda m: m.H, model, _pad_axis(model.H, size, 1))


@pad_examples.register
def _(model: DeepLinear, size: int):
    if model.features is None:
        return model
    return eqx.tree_at(lambda m: m.features, model, _pad_axis(model.features, size, 1))


def pad_problem(problem, size: int):
    """A member (model, objective, hyperparameters) padded to `size` examples.

    **Arguments:**

    - `problem`: (model, objective, hyperparameters).
    - `size`: the number of examples after padding.

    **Returns:** the padded member; hyperparameters are per member, so they stay as they are.
    """
    model, objective, hyper = problem
    return pad_examples(model, size), pad_examples(objective, size), hyper
