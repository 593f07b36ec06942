"""The unconstrained-features model: a classifier on one free feature column per example."""

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray
import numpy as np

from .. import _validate
from ..data.imbalance import _check_counts, labels_from_counts
from ._base import AbstractModel, check_init, gaussian, per_example


class UFM(AbstractModel):
    """The unconstrained-features model: one free feature column per example, outputs
    (W H + b 1^T)^T. Fit with `Objective` and class weights for *loss re-weighting*.

    **Arguments:**

    - `counts`: examples per class; fixes k and n (examples ordered class by class).
    - `dim`: feature dimension d.
    - `init_scale`: standard deviation sigma of the Gaussian entries of W and H (b starts at 0).
    - `key`: a JAX random key.
    - `bias`: whether to learn a bias b.
    """

    W: Float[Array, "k d"]
    H: Float[Array, "d n"] = per_example(axis=1)
    b: Float[Array, " k"] | None

    def __init__(self, counts, dim: int, *, init_scale=1e-3, key: PRNGKeyArray, bias=False):
        counts = _check_counts(counts)
        check_init(init_scale, key, dim=dim)
        kw, kh = jax.random.split(key)
        self.W = gaussian(kw, (counts.size, dim), init_scale)
        # Drawn example by example (rows of (n, d)), so that a draw for more examples extends
        # this one: a member built padded starts where the unpadded one does.
        self.H = gaussian(kh, (int(counts.sum()), dim), init_scale).T
        self.b = jnp.zeros(counts.size, self.W.dtype) if bias else None

    @classmethod
    def aligned(cls, counts, dim: int, init_output) -> "UFM":
        """Class-aligned balanced start: w_c = sqrt(z0) n_c^(1/4) e_c and h_i = sqrt(z0)
        n_c^(-1/4) e_{y_i}, so every correct-class output is z0 and |w_c|^2 = |H_c|_F^2. Under
        the weighted square loss each class then follows `analytic.ufm_class_output` exactly."""
        counts = _check_counts(counts)
        k = counts.size
        dim = _validate.integer("dim", dim, minimum=1)
        if dim < k:
            raise ValueError(f"`dim` = {dim} is not allowed: the aligned UFM needs dim >= {k}.")
        if np.ndim(init_output) and np.shape(init_output) != (k,):
            raise ValueError(f"`init_output` has shape {np.shape(init_output)}, expected a "
                             f"scalar or ({k},): one value per class.")
        _validate.number("init_output", init_output, low=0.0, low_open=True)
        z0 = jnp.broadcast_to(jnp.asarray(init_output, dtype=jnp.result_type(float)), (k,))
        n_c = jnp.asarray(counts, z0.dtype)
        E = jnp.eye(dim, k, dtype=z0.dtype)
        W = (E * (jnp.sqrt(z0) * n_c**0.25)).T
        H = (E * (jnp.sqrt(z0) * n_c**-0.25))[:, labels_from_counts(counts)]
        model = cls(counts, dim, init_scale=1.0, key=jax.random.key(0))
        return eqx.tree_at(lambda m: (m.W, m.H), model, (W, H))

    def __call__(self, inputs=None):
        outputs = (self.W @ self.H).T
        return outputs if self.b is None else outputs + self.b
