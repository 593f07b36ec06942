"""What every model shares: the abstract interface, Gaussian starts, checks, and the aligned
balanced factors under which gradient flow has a closed form."""

import abc
import dataclasses
from typing import Self

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float
import numpy as np

from .. import _validate
from ..losses._base import l2_penalty


class AbstractModel(eqx.Module):
    """A model: parameters only, as array leaves, and the map from inputs to outputs.

    A new model provides `__call__(inputs)`, the outputs (n, k) of every example; a model on
    free features (one parameter column per example) takes no inputs, and declares those
    fields with `per_example(axis)`, which is all `pad_examples` needs. Everything the
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

    def pad_examples(self, size: int) -> Self:
        """This model for `size` examples: each field declared `per_example(axis)` gets zero
        slices along its axis up to `size`. Zero free features receive no gradient from
        zero-weight examples and stay zero, so a padded member moves as the unpadded one.
        A model without such fields (one on inputs) is returned as it is.

        **Arguments:**

        - `size`: the number of examples after padding, at least the current number.

        **Returns:** a model of the same type.
        """
        fields = [f for f in dataclasses.fields(self)
                  if _EXAMPLE_AXIS in f.metadata and getattr(self, f.name) is not None]
        if not fields:
            return self
        padded = tuple(pad_axis(getattr(self, f.name), size, f.metadata[_EXAMPLE_AXIS])
                       for f in fields)
        return eqx.tree_at(lambda m: tuple(getattr(m, f.name) for f in fields), self, padded)

    def l2_penalty(self) -> Float[Array, ""]:
        """(1/2) |theta|^2 over the parameters: every floating-point array leaf, unless the
        model also keeps arrays that are not parameters and says so here."""
        return l2_penalty(self)


_EXAMPLE_AXIS = "example_axis"


def per_example(axis: int):
    """A model's field with one slice per example along `axis` (free features), which
    `AbstractModel.pad_examples` pads with zeros; the field may hold None.

    **Arguments:**

    - `axis`: the examples' axis of the field's array.

    **Returns:** an `equinox.field` for the model's class body.
    """
    return eqx.field(metadata={_EXAMPLE_AXIS: axis})


def pad_axis(x: Array, size: int, axis: int, value=0) -> Array:
    """`x` padded with `value` along `axis` up to `size` entries.

    **Arguments:**

    - `x`: an array.
    - `size`: its length along `axis` after padding, at least the current one.
    - `axis`: the axis to pad.
    - `value`: the value of the new entries.

    **Returns:** the padded array.
    """
    if size < x.shape[axis]:
        raise ValueError(f"`size` = {size} is not allowed: padding cannot drop examples; "
                         f"expected at least {x.shape[axis]}, the current number.")
    widths = [(0, 0)] * x.ndim
    widths[axis] = (0, size - x.shape[axis])
    return jnp.pad(x, widths, constant_values=value)


class AbstractLinearPredictor(AbstractModel):
    """A model whose outputs are linear (affine with a bias) in its inputs, f(x) = B [x, 1],
    however it is parametrized: it declares its end-to-end predictor B."""

    @abc.abstractmethod
    def linear_predictor(self) -> Float[Array, " q"] | None:
        """The end-to-end predictor B, flattened row by row, with a bias as one last column
        (the augmented-input view [x, 1]): (k p,), or (k (p + 1),) with a bias. None where the
        model acts on free features rather than inputs and so predicts no input."""


def output_shape(model, *args) -> tuple[int, ...]:
    """The shape of `model(*args)`, from shapes alone (`jax.eval_shape`: nothing is computed,
    and abstract values pass). A model that cannot be applied to `args` raises a `ValueError`
    that says so."""
    is_leaf = lambda x: eqx.is_array(x) or isinstance(x, jax.ShapeDtypeStruct)  # noqa: E731
    dynamic, static = eqx.partition((model, args), is_leaf)

    def apply(dynamic):
        model, args = eqx.combine(dynamic, static)
        return model(*args)

    try:
        outputs = jax.eval_shape(apply, dynamic)
    except TypeError as error:
        shapes = ", ".join(str(np.shape(a)) for a in args if a is not None) or "no inputs"
        raise ValueError(f"`model` ({type(model).__name__}) cannot be applied to the "
                         f"objective's data ({shapes}): {error}") from error
    return tuple(np.shape(outputs))


def gaussian(key, shape, scale):
    """Independent Gaussian entries of standard deviation `scale`, in the default float dtype."""
    return scale * jax.random.normal(key, shape, dtype=jnp.result_type(float))


def check_key(key):
    """Checks that a random key was given."""
    if key is None:
        raise ValueError("`key` = None is not allowed: pass a key, e.g. jax.random.key(0).")


def check_init(init_scale, key, **dims):
    """Checks the common arguments of a Gaussian start: `init_scale` > 0, a key, and each
    dimension in `dims` (by its name) an integer >= 1."""
    _validate.number("init_scale", init_scale, low=0.0, low_open=True)
    for name, dim in dims.items():
        _validate.integer(name, dim, minimum=1)
    check_key(key)


def target_modes(target, tol: float = 1e-10):
    """The singular triplets (U, s, V) of `target` with s > tol * s_max: its learnable modes."""
    check_target(target)
    U, s, Vt = jnp.linalg.svd(jnp.asarray(target), full_matrices=False)
    rank = int(np.sum(np.asarray(s) > tol * np.max(np.asarray(s))))
    return U[:, :rank], s[:rank], Vt[:rank].T


def check_target(target):
    """Checks a target matrix: 2-D, at least one row and column, finite, and not zero (a zero
    target has no mode to learn)."""
    if np.ndim(target) != 2 or 0 in np.shape(target):
        raise ValueError(f"`target` has shape {np.shape(target)}, expected a matrix (k, m) with "
                         "k, m >= 1.")
    _validate.number("target", target)
    if _validate.is_concrete(target) and not np.any(np.asarray(target) != 0):
        raise ValueError("`target` is zero: it has no mode to learn.")
    return target


def aligned_factors(target, num_factors: int, width: int, init_strength, *,
                    width_name: str = "dim"):
    """Balanced factors F_1 (width x m), ..., F_N (k x width), aligned with the target's modes,
    whose product F_N ... F_1 is U diag(a0) V^T.

    Each factor carries a0^(1/N) per mode: F_1 = Q b V^T, F_j = Q b Q^T, F_N = U b Q^T with
    Q = the first r columns of I_width. Balanced (F_{j+1}^T F_{j+1} = F_j F_j^T), so gradient flow
    keeps the product on these modes and each mode obeys the scalar mode equation.

    **Arguments:**

    - `target`: T, (k, m), not zero.
    - `num_factors`: N >= 1.
    - `width`: the inner width, at least the target's rank r (for N > 1); `width_name` is its
      name in messages.
    - `init_strength`: a0 > 0, a scalar or one value per mode (r,).

    **Returns:** the factors [F_1, ..., F_N].
    """
    num_factors = _validate.integer("num_factors", num_factors, minimum=1)
    width = _validate.integer(width_name, width, minimum=1)
    U, s, V = target_modes(target)
    r = s.size
    if num_factors > 1 and width < r:
        raise ValueError(f"`{width_name}` = {width} is not allowed: the aligned initialization "
                         f"needs {width_name} >= {r}, the target's rank.")
    if np.ndim(init_strength) and np.shape(init_strength) != (r,):
        raise ValueError(f"`init_strength` has shape {np.shape(init_strength)}, expected a "
                         f"scalar or ({r},): one value per mode of the target.")
    _validate.number("init_strength", init_strength, low=0.0, low_open=True)
    a0 = jnp.broadcast_to(jnp.asarray(init_strength, dtype=s.dtype), (r,))
    b = a0 ** (1.0 / num_factors)
    if num_factors == 1:
        return [(U * b) @ V.T]
    Q = jnp.eye(width, r, dtype=s.dtype)
    inner = (Q * b) @ Q.T
    return [(Q * b) @ V.T] + [inner] * (num_factors - 2) + [(U * b) @ Q.T]
