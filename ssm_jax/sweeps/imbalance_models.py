"""The kinds of model a step-imbalance problem builds (`problems.imbalance_problem`), each
with its objective: the UFM and the deep UFM re-weight the loss, the SSM (k x n label matrix)
and the class-level SSM (k x k) re-weight their target. `registry.MODELS` names them.

Each builds from counts that may be traced, into `size` examples of which those beyond n are
padding (zero weight, no class, zero features), and each says what its closed form predicts.
"""

import abc

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .. import analytic
from ..data.imbalance import class_label_matrix, label_matrix, padded_labels
from ..losses import AbstractLoss
from ..models import SSM, UFM, DeepLinear
from ..objective import Objective, TargetFit


class AbstractImbalanceModel(eqx.Module):
    """A model and objective for a step imbalance.

    A new kind declares `fits_target` (target re-weighting by a `TargetFit`, which needs a
    square loss, rather than loss re-weighting), `class_level` (one column per class, so
    that its size does not depend on n) and `layered` (a stack of `depth` layers, whose
    widths cannot be padded), and provides `build` and `predicted_ratio`.
    """

    fits_target: eqx.AbstractClassVar[bool]
    class_level: eqx.AbstractClassVar[bool]
    layered: eqx.AbstractClassVar[bool]

    @abc.abstractmethod
    def build(self, *, counts, weights, size: int, loss: AbstractLoss, dim: int, depth: int,
              init_scale, key, l2):
        """One problem.

        **Arguments:**

        - `counts`, `weights`: examples and weight per class, (k,), possibly traced.
        - `size`: the number of examples to build, n or more (padding); k where
          `class_level`.
        - `loss`: the loss (a square loss where `fits_target`).
        - `dim`, `depth`: the width and (where `layered`) the number of layers.
        - `init_scale`, `key`: the Gaussian start.
        - `l2`: the L2 strength.

        **Returns:** (model, objective).
        """

    @abc.abstractmethod
    def predicted_ratio(self, counts: np.ndarray, power: float, init_strength: float):
        """The closed-form t_minority / t_majority under the square loss; traceable (a sweep
        computes it for every member under one `vmap`).

        **Arguments:**

        - `counts`: examples per class (possibly traced floats, `step_counts`).
        - `power`: gamma of the class weights omega_c ~ n_c^-gamma.
        - `init_strength`: the typical start's mode strength a0 (`expected_init_strength`).

        **Returns:** the ratio, a scalar; NaN where no closed form is derived.
        """


def _valid(counts, size, dtype):
    """1 on the n examples, 0 on padding."""
    return (jnp.arange(size) < jnp.sum(jnp.asarray(counts, dtype=dtype))).astype(dtype)


def _centered(loss: AbstractLoss, k: int) -> bool:
    """Whether the square loss's targets are the centered e_y - 1/k (some entries negative)
    rather than e_y: the target then centers the label matrix alike."""
    with jax.ensure_compile_time_eval():  # a Python value, also inside a vectorized build
        return bool(np.any(np.asarray(loss.square_targets(k)) < 0))


def _placeholder_counts(num_classes: int, size: int) -> np.ndarray:
    """Counts of `size` examples in all: models and objectives take their shapes from them,
    while the real (possibly traced) counts enter as values."""
    return np.array([size - num_classes + 1] + [1] * (num_classes - 1))


def _label_modes(counts, weights, labels, center: bool):
    """The singular triplets of `label_matrix` from those of the k x k `class_label_matrix`
    B = U S W^T: V = Y^T diag(n_c^-1/2) W, row by row, zero on padding. Cheaper than an SVD of
    the k x n matrix, and a padded target gets the same modes as the unpadded one."""
    U, s, Wt = jnp.linalg.svd(class_label_matrix(counts, weights, center=center))
    per_class = Wt.T / jnp.sqrt(jnp.asarray(counts, s.dtype))[:, None]
    V = jnp.where((labels >= 0)[:, None], per_class[labels], 0.0)
    return U, s, V


def _loss_reweighting(counts, weights, size, loss, l2):
    k = np.shape(counts)[0]
    labels = padded_labels(counts, size, loss.padding_label)
    total = jnp.sum(jnp.asarray(counts, dtype=weights.dtype))
    placeholder = Objective(np.arange(size) % k, loss, class_weights=weights, l2=l2,
                            num_classes=k)
    return eqx.tree_at(lambda o: (o.labels, o.example_weights, o.num_examples), placeholder,
                       (labels, _valid(counts, size, weights.dtype), total))


def _ufm_ratio(counts, power, init_strength):
    z0 = init_strength / jnp.sqrt(counts)  # the UFM's correct-class output on each class mode
    return analytic.learning_time_ratio(counts, power, z0, reading="loss")


def _ssm_ratio(counts, power, init_strength):
    return analytic.learning_time_ratio(counts, power, init_strength, reading="target")


class FreeFeatures(AbstractImbalanceModel):
    """The UFM (`UFM`), loss re-weighting: one free feature column per example."""

    fits_target = False
    class_level = False
    layered = False

    def build(self, *, counts, weights, size, loss, dim, depth, init_scale, key, l2):
        objective = _loss_reweighting(counts, weights, size, loss, l2)
        k = np.shape(counts)[0]
        net = UFM(_placeholder_counts(k, size), dim, init_scale=init_scale, key=key)
        return eqx.tree_at(lambda m: m.H, net, net.H * _valid(counts, size, weights.dtype)), \
            objective

    def predicted_ratio(self, counts, power, init_strength):
        return _ufm_ratio(counts, power, init_strength)


class DeepFreeFeatures(AbstractImbalanceModel):
    """The deep UFM (`DeepLinear` of `depth` layers on free features), loss re-weighting."""

    fits_target = False
    class_level = False
    layered = True

    def build(self, *, counts, weights, size, loss, dim, depth, init_scale, key, l2):
        objective = _loss_reweighting(counts, weights, size, loss, l2)
        k = np.shape(counts)[0]
        net = DeepLinear(k, dim, depth, num_examples=size, init_scale=init_scale, key=key)
        valid = _valid(counts, size, weights.dtype)
        return eqx.tree_at(lambda m: m.features, net, net.features * valid), objective

    def predicted_ratio(self, counts, power, init_strength):
        # The UFM's closed form holds for two factors only; none is derived at depth N.
        return float("nan")


class ExampleTarget(AbstractImbalanceModel):
    """The SSM fitting the k x n re-weighted label matrix (target re-weighting)."""

    fits_target = True
    class_level = False
    layered = False

    def build(self, *, counts, weights, size, loss, dim, depth, init_scale, key, l2):
        center = _centered(loss, np.shape(counts)[0])
        total = jnp.sum(jnp.asarray(counts, dtype=weights.dtype))
        labels = padded_labels(counts, size)
        target = label_matrix(counts, weights, center=center, size=size)
        modes = _label_modes(counts, weights, labels, center)
        objective = eqx.tree_at(lambda o: o.labels, TargetFit(
            target, num_examples=total, l2=l2, modes=modes), labels)
        net = SSM(target.shape, dim, init_scale=init_scale, key=key)
        valid = _valid(counts, size, weights.dtype)
        return eqx.tree_at(lambda m: m.H, net, net.H * valid), objective

    def predicted_ratio(self, counts, power, init_strength):
        return _ssm_ratio(counts, power, init_strength)


class ClassTarget(AbstractImbalanceModel):
    """The class-level SSM fitting the k x k re-weighted target (`class_label_matrix`), the
    cheapest: its size does not depend on n."""

    fits_target = True
    class_level = True
    layered = False

    def build(self, *, counts, weights, size, loss, dim, depth, init_scale, key, l2):
        k = np.shape(counts)[0]
        total = jnp.sum(jnp.asarray(counts, dtype=weights.dtype))
        target = class_label_matrix(counts, weights, center=_centered(loss, k))
        objective = TargetFit(target, labels=np.arange(k), num_examples=total, l2=l2)
        return SSM(target.shape, dim, init_scale=init_scale, key=key), objective

    def predicted_ratio(self, counts, power, init_strength):
        return _ssm_ratio(counts, power, init_strength)
