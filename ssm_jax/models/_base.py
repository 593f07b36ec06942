"""What every model shares: the abstract interface, Gaussian starts, checks, and the aligned
balanced factors under which gradient flow has a closed form."""

import abc

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float
import numpy as np

from .. import _validate


class AbstractModel(eqx.Module):
    """A model: parameters only, as array leaves, and the map from inputs to outputs.

    A new model provides `__call__(inputs)`, the outputs (n, k) of every example; a model on
    free features (one parameter column per example) takes no inputs, and registers how it
    pads to more examples with `ssm_jax.sweeps.pad_examples.register`. Everything the
    dynamics differentiate is a floating-point array leaf; settings that are not trained are
    static fields. A model whose outputs are linear in its inputs is an
    `AbstractLinearPredictor`.
    """

    @abc.abstractmethod
    def __call__(self, inputs: Array | None = None) -> Float[Array, "n k"]:
        """Outputs (logits) for every example, one row each.

        **Arguments:**

        - `inputs`: data (n, p) for a model on inputs; None for a model on free features.

        **Returns:** the outputs, (n, k).
        """


class AbstractLinearPredictor(AbstractModel):
    """A model whose outputs are linear (affine with a bias) in its inputs, f(x) = B [x, 1],
    however it is parametrized: it declares its end-to-end predictor B."""

    @abc.abstractmethod
    def linear_predictor(self) -> Float[Array, " q"] | None:
        """The end-to-end predictor B, flattened row by row, with a bias as one last column
        (the augmented-input view [x, 1]): (k p,), or (k (p + 1),) with a bias. None where the
        model acts on free features rather than inputs and so predicts no input."""


def gaussian(key, shape, scale):
    """Independent Gaussian entries of standard deviation `scale`, in the default float dtype."""
    return scale * jax.random.normal(key, shape, dtype=jnp.result_type(float))


def check_init(init_scale, dim, key):
    """Checks the common arguments of a Gaussian start: `init_scale` > 0, `dim` >= 1, a key."""
    _validate.number("init_scale", init_scale, low=0.0, low_open=True)
    _validate.integer("dim", dim, minimum=1)
    if key is None:
        raise ValueError("`key` = None is not allowed: pass a key, e.g. jax.random.key(0).")


def target_modes(target, tol: float = 1e-10):
    """The singular triplets (U, s, V) of `target` with s > tol * s_max: its learnable modes."""
    U, s, Vt = jnp.linalg.svd(jnp.asarray(target), full_matrices=False)
    rank = int(np.sum(np.asarray(s) > tol * np.max(np.asarray(s))))
    return U[:, :rank], s[:rank], Vt[:rank].T


def aligned_factors(target, num_factors: int, width: int, init_strength):
    """Balanced factors F_1 (width x m), ..., F_N (k x width), aligned with the target's modes,
    whose product F_N ... F_1 is U diag(a0) V^T.

    Each factor carries a0^(1/N) per mode: F_1 = Q b V^T, F_j = Q b Q^T, F_N = U b Q^T with
    Q = the first r columns of I_width. Balanced (F_{j+1}^T F_{j+1} = F_j F_j^T), so gradient flow
    keeps the product on these modes and each mode obeys the scalar mode equation.
    """
    U, s, V = target_modes(target)
    r = s.size
    if num_factors > 1 and width < r:
        raise ValueError(f"`dim` = {width} is not allowed: the aligned initialization needs "
                         f"dim >= {r}, the target's rank.")
    a0 = jnp.broadcast_to(jnp.asarray(init_strength, dtype=s.dtype), (r,))
    _validate.number("init_strength", a0, low=0.0, low_open=True)
    b = a0 ** (1.0 / num_factors)
    if num_factors == 1:
        return [(U * b) @ V.T]
    Q = jnp.eye(width, r, dtype=s.dtype)
    inner = (Q * b) @ Q.T
    return [(Q * b) @ V.T] + [inner] * (num_factors - 2) + [(U * b) @ Q.T]
