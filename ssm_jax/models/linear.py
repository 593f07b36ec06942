"""A linear classifier f(x) = w^T x (+ b): one output per example, for the margin losses."""

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from .. import _validate
from ._base import AbstractLinearPredictor, gaussian


class Linear(AbstractLinearPredictor):
    """f(x) = w^T x + b, outputs (n, 1).

    Gradient flow on (w, b) is gradient flow on w for inputs augmented with a constant 1, so
    with a bias the separable-data limit is the max-margin direction of [x, 1] (see
    `ssm_jax.max_margin`); without one it is the homogeneous max-margin direction.

    **Arguments:**

    - `in_features`: p.
    - `bias`: whether to learn b.
    - `init_scale`: standard deviation of the Gaussian start of w (and b); 0 (the default)
      starts at zero, the usual start for logistic regression, and needs no key.
    - `key`: a JAX random key, required when `init_scale` > 0.
    """

    weight: Float[Array, " p"]
    b: Float[Array, ""] | None

    def __init__(self, in_features: int, *, bias: bool = False, init_scale=0.0,
                 key: PRNGKeyArray | None = None):
        _validate.integer("in_features", in_features, minimum=1)
        _validate.number("init_scale", init_scale, low=0.0)
        dtype = jnp.result_type(float)
        if float(init_scale) == 0.0:
            self.weight = jnp.zeros(in_features, dtype)
            self.b = jnp.zeros((), dtype) if bias else None
            return
        if key is None:
            raise ValueError("`key` = None is not allowed with `init_scale` > 0: pass a key, "
                             "e.g. jax.random.key(0).")
        wkey, bkey = jax.random.split(key)
        self.weight = gaussian(wkey, (in_features,), init_scale)
        self.b = gaussian(bkey, (), init_scale) if bias else None

    @property
    def end_to_end(self) -> Float[Array, "1 q"]:
        """The predictor as one row: w, or [w, b] with a bias (the augmented-input view)."""
        row = self.weight if self.b is None else jnp.append(self.weight, self.b)
        return row[None, :]

    def linear_predictor(self):
        return self.end_to_end[0]

    def __call__(self, inputs=None):
        if inputs is None:
            raise ValueError("`inputs` = None is not allowed: Linear acts on inputs (n x p).")
        outputs = inputs @ self.weight
        if self.b is not None:
            outputs = outputs + self.b
        return outputs[:, None]
