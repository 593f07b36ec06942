"""What to record along a flow on separable binary data: how far the predictor is from the
max-margin direction, its normalized margin, the share of a probe set predicted positive,
per-class training loss, and (for 2-D data) the outputs on a grid, the decision boundary.

`SeparableMetrics` holds the probe set, the grid and the SVM direction as array leaves, so one
compilation of `gradient_flow`/`train` serves every weight, seed and data set of the same
shapes: pass it as `metrics=`.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float
import numpy as np

from .. import _validate
from ..losses import margins as margins_of
from ..models._base import AbstractLinearPredictor, AbstractModel


def direction_cosine(w, reference):
    """cos of the angle between w and `reference` (flattened), in JAX (traceable)."""
    w, reference = jnp.ravel(w), jnp.ravel(reference)
    return jnp.dot(w, reference) / (jnp.linalg.norm(w) * jnp.linalg.norm(reference))


def direction_error(w, reference):
    """1 - cos(w, reference): zero when w points along `reference`; about angle^2 / 2."""
    return 1.0 - direction_cosine(w, reference)


def direction_angle(w, reference):
    """The angle between w and `reference` in radians, accurate also for tiny angles."""
    w, reference = jnp.ravel(w), jnp.ravel(reference)
    u = w / jnp.linalg.norm(w)
    v = reference / jnp.linalg.norm(reference)
    return 2.0 * jnp.arctan2(jnp.linalg.norm(u - v), jnp.linalg.norm(u + v))


def linear_predictor(model: AbstractModel) -> Float[Array, " q"] | None:
    """The end-to-end linear predictor of a model, flattened, with its bias appended (the
    augmented-input view [x, 1]), as `AbstractLinearPredictor.linear_predictor` declares it;
    None for a model that is not linear in its inputs."""
    if isinstance(model, AbstractLinearPredictor):
        return model.linear_predictor()
    return None


def parameter_norm(model) -> Float[Array, ""]:
    """|theta|, the Euclidean norm of every floating-point array in `model`."""
    leaves = jax.tree_util.tree_leaves(eqx.filter(model, eqx.is_inexact_array))
    return jnp.sqrt(sum(jnp.sum(leaf**2) for leaf in leaves))


class SeparableMetrics(eqx.Module):
    """Metrics for a binary model on separable data, as `metrics(model, objective) -> dict`.

    **Arguments:**

    - `probe`: (m, p) inputs on which predictions are counted (a held-out sample or a grid).
    - `svm_direction`: the max-margin direction w_hat (p,), or (p + 1,) for a model with a
      bias (`max_margin` of `augment_bias(X)`); None records no direction.
    - `grid`: optional (g, 2) inputs whose outputs are recorded at every save, for decision
      boundary snapshots (`probe_grid`); None records none.
    - `objective_metrics`: also record `objective.metrics(model)` (per-class loss, accuracy,
      output and margin, and the loss).

    **Records:**

    - `direction_cosine`, `direction_angle` (radians): the linear predictor against
      `svm_direction`; NaN for a model that is not linear (an MLP) or without a direction.
    - `normalized_margin`: min_i y_i f(x_i) / |beta| for a linear predictor beta, and
      min_i y_i f(x_i) / |theta|^2 otherwise (the 2-homogeneous MLP).
    - `norm`: |beta| or |theta|.
    - `probe_positive`: the fraction of `probe` with f(x) > 0.
    - `grid_outputs` (g,): f on `grid`, when given.
    - `class_loss`, `class_accuracy`, ... (2,): index 0 is the -1 class, 1 the +1 class.
    """

    probe: Float[Array, "m p"]
    svm_direction: Float[Array, " q"] | None
    grid: Float[Array, "g 2"] | None
    objective_metrics: bool = eqx.field(static=True)

    def __init__(self, probe, svm_direction=None, grid=None, objective_metrics: bool = True):
        if np.ndim(probe) != 2 or 0 in np.shape(probe):
            raise ValueError(f"`probe` has shape {np.shape(probe)}, expected (m, p) with "
                             "m, p >= 1.")
        _validate.number("probe", probe)
        self.probe = jnp.asarray(probe, dtype=jnp.result_type(float))
        if svm_direction is not None:
            if np.ndim(svm_direction) != 1 or not np.all(np.isfinite(svm_direction)) \
                    or not np.any(np.asarray(svm_direction) != 0):
                raise ValueError(f"`svm_direction` = {np.asarray(svm_direction)} is not allowed: "
                                 "expected a finite nonzero vector (p,) or (p + 1,).")
            svm_direction = jnp.asarray(svm_direction, dtype=self.probe.dtype)
        self.svm_direction = svm_direction
        if grid is not None:
            if np.ndim(grid) != 2 or np.shape(grid)[1] != self.probe.shape[1] or \
                    np.shape(grid)[0] == 0:
                raise ValueError(f"`grid` has shape {np.shape(grid)}, expected (g, "
                                 f"{self.probe.shape[1]}): points like the probe's.")
            grid = jnp.asarray(grid, dtype=self.probe.dtype)
        self.grid = grid
        self.objective_metrics = objective_metrics

    def __call__(self, model: AbstractModel, objective) -> dict[str, Array]:
        """The metrics at `model`.

        **Arguments:**

        - `model`: a binary model, one output per example.
        - `objective`: its `Objective` on the training data (inputs and labels -1/+1).

        **Returns:** a dict of the records listed above.
        """
        out = dict(objective.metrics(model)) if self.objective_metrics else {}
        dtype = self.probe.dtype
        nan = jnp.asarray(jnp.nan, dtype)
        beta = linear_predictor(model)
        m = margins_of(model(objective.inputs), objective.labels)
        if beta is None:
            norm = parameter_norm(model)
            out["normalized_margin"] = jnp.min(m) / norm**2
            out["direction_cosine"] = out["direction_angle"] = nan
        else:
            norm = jnp.linalg.norm(beta)
            out["normalized_margin"] = jnp.min(m) / norm
            if self.svm_direction is None:
                out["direction_cosine"] = out["direction_angle"] = nan
            else:
                if beta.shape != self.svm_direction.shape:
                    raise ValueError(f"`svm_direction` has shape {self.svm_direction.shape}, but "
                                     f"the model's linear predictor has shape {beta.shape} (a "
                                     "bias adds one entry: use max_margin(augment_bias(X), y)).")
                out["direction_cosine"] = direction_cosine(beta, self.svm_direction)
                out["direction_angle"] = direction_angle(beta, self.svm_direction)
        out["norm"] = norm
        out["probe_positive"] = jnp.mean((jnp.ravel(model(self.probe)) > 0).astype(dtype))
        if self.grid is not None:
            out["grid_outputs"] = jnp.ravel(model(self.grid))
        return out
