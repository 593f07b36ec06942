"""Models as Equinox modules: parameters only. Each maps its inputs (or, for free-feature
models, nothing) to outputs of shape (n, k), one row per example.

- `SSM`: two factors W (k x d) and H (d x m) whose product fits a target matrix.
- `UFM`: classifier W (k x d), one free feature column per example H (d x n), optional bias.
- `DeepLinear`: W_L ... W_1 applied to inputs X (n x p), or to free features H (deep UFM).

Each has a small Gaussian initialization (entries of standard deviation `init_scale`) and an
aligned, balanced one (`.aligned(...)`) under which gradient flow has a closed form.
"""

import abc

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray
import numpy as np

from . import _validate
from .imbalance import _check_counts, labels_from_counts


class AbstractModel(eqx.Module):
    @abc.abstractmethod
    def __call__(self, inputs: Array | None = None) -> Float[Array, "n k"]:
        """Outputs (logits) for every example, one row each."""


def _gaussian(key, shape, scale):
    return scale * jax.random.normal(key, shape, dtype=jnp.result_type(float))


def _check_init(init_scale, dim, key):
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
    H: Float[Array, "d m"]

    def __init__(self, shape, dim: int, *, init_scale=1e-3, key: PRNGKeyArray):
        _check_init(init_scale, dim, key)
        k, m = shape
        kw, kh = jax.random.split(key)
        self.W = _gaussian(kw, (k, dim), init_scale)
        self.H = _gaussian(kh, (dim, m), init_scale)

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
    H: Float[Array, "d n"]
    b: Float[Array, " k"] | None

    def __init__(self, counts, dim: int, *, init_scale=1e-3, key: PRNGKeyArray, bias=False):
        counts = _check_counts(counts)
        _check_init(init_scale, dim, key)
        kw, kh = jax.random.split(key)
        self.W = _gaussian(kw, (counts.size, dim), init_scale)
        self.H = _gaussian(kh, (dim, int(counts.sum())), init_scale)
        self.b = jnp.zeros(counts.size, self.W.dtype) if bias else None

    @classmethod
    def aligned(cls, counts, dim: int, init_output) -> "UFM":
        """Class-aligned balanced start: w_c = sqrt(z0) n_c^(1/4) e_c and h_i = sqrt(z0)
        n_c^(-1/4) e_{y_i}, so every correct-class output is z0 and |w_c|^2 = |H_c|_F^2. Under
        the weighted square loss each class then follows `analytic.ufm_class_output` exactly."""
        counts = _check_counts(counts)
        k = counts.size
        if dim < k:
            raise ValueError(f"`dim` = {dim} is not allowed: the aligned UFM needs dim >= {k}.")
        z0 = jnp.broadcast_to(jnp.asarray(init_output, dtype=jnp.result_type(float)), (k,))
        _validate.number("init_output", z0, low=0.0, low_open=True)
        n_c = jnp.asarray(counts, z0.dtype)
        E = jnp.eye(dim, k, dtype=z0.dtype)
        W = (E * (jnp.sqrt(z0) * n_c**0.25)).T
        H = (E * (jnp.sqrt(z0) * n_c**-0.25))[:, labels_from_counts(counts)]
        model = cls(counts, dim, init_scale=1.0, key=jax.random.key(0))
        return eqx.tree_at(lambda m: (m.W, m.H), model, (W, H))

    def __call__(self, inputs=None):
        outputs = (self.W @ self.H).T
        return outputs if self.b is None else outputs + self.b


class DeepLinear(AbstractModel):
    """A deep linear network W_L ... W_1 of depth L >= 1, on data inputs X (n x p) or on free
    features H (d x n), the *deep UFM*. Give exactly one of `in_features` and `num_examples`.

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
    features: Float[Array, "d n"] | None
    b: Float[Array, " k"] | None

    def __init__(self, out_features: int, width: int, depth: int, *, in_features=None,
                 num_examples=None, init_scale=1e-3, key: PRNGKeyArray, bias=False):
        _validate.integer("out_features", out_features, minimum=1)
        _validate.integer("depth", depth, minimum=1)
        _check_init(init_scale, width, key)
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
            _gaussian(keys[j], (dims[j + 1], dims[j]), init_scale) for j in range(depth)
        )
        self.features = (
            None if num_examples is None
            else _gaussian(keys[-1], (width, num_examples), init_scale)
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
        k, m = jnp.shape(target)
        factors = aligned_factors(target, depth + free_features, width, init_strength)
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

    def __call__(self, inputs=None):
        if self.features is None:
            if inputs is None:
                raise ValueError("This DeepLinear acts on inputs: pass `inputs` (n x p).")
            outputs = inputs @ self.end_to_end.T
        else:
            outputs = self.end_to_end.T
        return outputs if self.b is None else outputs + self.b
