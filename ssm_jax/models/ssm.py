"""The spectral small-scale model: two factors fitting a target matrix."""

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray
import numpy as np

from .. import _validate
from ._base import AbstractModel, aligned_factors, check_init, gaussian, per_example


class SSM(AbstractModel):
    """The spectral small-scale model: outputs (W H)^T, fit to a target matrix T (k x m) such as
    `label_matrix(counts, weights)` (target re-weighting) with `TargetFit`.

    **Arguments:**

    - `shape`: the target's shape (k, m): m = n for the example-level model, m = k for the
      class-level one (`class_label_matrix`).
    - `dim`: inner dimension d.
    - `init_scale`: standard deviation sigma of the Gaussian entries of W and H.
    - `key`: a JAX random key.
    """

    W: Float[Array, "k d"]
    H: Float[Array, "d m"] = per_example(axis=1)

    def __init__(self, shape, dim: int, *, init_scale=1e-3, key: PRNGKeyArray):
        check_init(init_scale, key, dim=dim)
        if np.ndim(shape) != 1 or np.size(shape) != 2:
            raise ValueError(f"`shape` = {shape!r} is not allowed: expected the target's shape "
                             "(k, m), two integers >= 1.")
        k, m = (_validate.integer(f"shape[{i}]", x, minimum=1) for i, x in enumerate(shape))
        kw, kh = jax.random.split(key)
        self.W = gaussian(kw, (k, dim), init_scale)
        # Drawn column by column (rows of (m, d)): a draw for more columns extends this one.
        self.H = gaussian(kh, (m, dim), init_scale).T

    @classmethod
    def aligned(cls, target, dim: int, init_strength) -> "SSM":
        """Balanced factors W = U diag(sqrt a0) Q^T, H = Q diag(sqrt a0) V^T along the target's
        nonzero singular modes (Saxe et al. 2014), whose flow has the closed form
        `analytic.mode_strength`. `init_strength` a0 is a scalar or one value per mode."""
        H, W = aligned_factors(target, 2, dim, init_strength)
        model = cls(jnp.shape(target), dim, init_scale=1.0, key=jax.random.key(0))
        return eqx.tree_at(lambda m: (m.W, m.H), model, (W, H))

    def __call__(self, inputs=None):
        return (self.W @ self.H).T
