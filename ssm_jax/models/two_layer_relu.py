"""A two-layer ReLU network f(x) = a^T relu(W x + c), one output per example.

Parameters only (no batch norm, no dropout), so gradient flow and `train` see a plain
function of its arrays. Without an output bias it is 2-homogeneous in its parameters
(scaling (W, c, a) by s scales f by s^2), the setting in which gradient flow on separable data
converges in direction to a max-margin point (Lyu & Li 2020); its normalized margin is
min_i y_i f(x_i) / |theta|^2.
"""

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from ._base import AbstractModel, check_init, gaussian


class TwoLayerReLU(AbstractModel):
    """f(x) = a^T relu(W x + c) (+ b), outputs (n, 1).

    **Arguments:**

    - `in_features`: p.
    - `width`: the number of hidden units.
    - `init_scale`: standard deviation of every Gaussian entry; the hidden layer's entries are
      scaled by 1/sqrt(p) and the output's by 1/sqrt(width), so that outputs start of order
      `init_scale`^2.
    - `key`: a JAX random key.
    - `hidden_bias`: whether to learn c (keeps the network 2-homogeneous).
    - `output_bias`: whether to learn b (breaks homogeneity).
    """

    hidden: Float[Array, "width p"]
    hidden_b: Float[Array, " width"] | None
    output: Float[Array, " width"]
    output_b: Float[Array, ""] | None

    def __init__(self, in_features: int, width: int, *, init_scale=1.0,
                 key: PRNGKeyArray, hidden_bias: bool = True, output_bias: bool = False):
        check_init(init_scale, key, in_features=in_features, width=width)
        k1, k2, k3 = jax.random.split(key, 3)
        self.hidden = gaussian(k1, (width, in_features), init_scale / in_features ** 0.5)
        self.hidden_b = gaussian(k2, (width,), init_scale / in_features ** 0.5) \
            if hidden_bias else None
        self.output = gaussian(k3, (width,), init_scale / width ** 0.5)
        self.output_b = jnp.zeros((), self.output.dtype) if output_bias else None

    def __call__(self, inputs=None):
        if inputs is None:
            raise ValueError("`inputs` = None is not allowed: TwoLayerReLU acts on inputs (n x p).")
        pre = inputs @ self.hidden.T
        if self.hidden_b is not None:
            pre = pre + self.hidden_b
        outputs = jax.nn.relu(pre) @ self.output
        if self.output_b is not None:
            outputs = outputs + self.output_b
        return outputs[:, None]
