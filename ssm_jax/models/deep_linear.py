"""Deep linear networks, on data inputs or on free features (the deep UFM)."""

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from .. import _validate
from ._base import (
    AbstractLinearPredictor,
    aligned_factors,
    check_init,
    gaussian,
    per_example,
)


class DeepLinear(AbstractLinearPredictor):
    """A deep linear network W_L ... W_1 of depth L >= 1, on data inputs X (n x p) or on free
    features H (d x n), the *deep UFM*. Give exactly one of `in_features` and `num_examples`.
    On free features it predicts no input: its `linear_predictor` is None.

    **Arguments:**

    - `out_features`: k.
    - `width`: d, the width of every hidden layer (and of the free features).
    - `depth`: L, the number of weight matrices.
    - `in_features`: p, for a network on inputs.
    - `num_examples`: n, for a network on free features.
    - `init_scale`: standard deviation sigma of every Gaussian entry.
    - `key`: a JAX random key.
    - `bias`: whether to learn an output bias.
    """

    weights: tuple[Float[Array, "_ _"], ...]
    features: Float[Array, "d n"] | None = per_example(axis=1)
    b: Float[Array, " k"] | None

    def __init__(self, out_features: int, width: int, depth: int, *, in_features=None,
                 num_examples=None, init_scale=1e-3, key: PRNGKeyArray, bias=False):
        check_init(init_scale, key, out_features=out_features, width=width, depth=depth)
        if (in_features is None) == (num_examples is None):
            raise ValueError("Give exactly one of `in_features` (a network on inputs) and "
                             "`num_examples` (a network on free features).")
        first = width if in_features is None else in_features
        if in_features is not None:
            _validate.integer("in_features", in_features, minimum=1)
        else:
            _validate.integer("num_examples", num_examples, minimum=1)
        dims = [first] + [width] * (depth - 1) + [out_features]
        keys = jax.random.split(key, depth + 1)
        self.weights = tuple(
            gaussian(keys[j], (dims[j + 1], dims[j]), init_scale) for j in range(depth)
        )
        self.features = (
            None if num_examples is None
            # example by example, so that a draw for more examples extends this one
            else gaussian(keys[-1], (num_examples, width), init_scale).T
        )
        self.b = jnp.zeros(out_features, self.weights[0].dtype) if bias else None

    @classmethod
    def aligned(cls, target, width: int, depth: int, init_strength, *,
                free_features: bool = False) -> "DeepLinear":
        """Balanced factors whose product is U diag(a0) V^T along the target's modes. On whitened
        inputs (X^T X = I) use target = T X, the output-input correlation; with free features the
        product includes H, so N = L + 1 factors share a0 and each mode obeys
        da/dt = (N/n) a^(2 - 2/N) (s - a)."""
        _validate.integer("depth", depth, minimum=1)
        factors = aligned_factors(target, depth + free_features, width, init_strength,
                                  width_name="width")
        k, m = jnp.shape(target)
        if free_features:
            model = cls(k, width, depth, num_examples=m, init_scale=1.0, key=jax.random.key(0))
            return eqx.tree_at(lambda n: (n.features, n.weights), model,
                               (factors[0], tuple(factors[1:])))
        model = cls(k, width, depth, in_features=m, init_scale=1.0, key=jax.random.key(0))
        return eqx.tree_at(lambda n: n.weights, model, tuple(factors))

    @property
    def end_to_end(self) -> Float[Array, "k p"]:
        """The product W_L ... W_1 (times H for free features)."""
        product = self.weights[0] if self.features is None else self.weights[0] @ self.features
        for W in self.weights[1:]:
            product = W @ product
        return product

    def linear_predictor(self):
        if self.features is not None:
            return None
        if self.b is None:
            return jnp.ravel(self.end_to_end)
        return jnp.ravel(jnp.concatenate([self.end_to_end, self.b[:, None]], axis=1))

    def __call__(self, inputs=None):
        if self.features is None:
            if inputs is None:
                raise ValueError("This DeepLinear acts on inputs: pass `inputs` (n x p).")
            outputs = inputs @ self.end_to_end.T
        else:
            outputs = self.end_to_end.T
        return outputs if self.b is None else outputs + self.b
