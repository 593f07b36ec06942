"""Binary Gaussian blobs, separable through the origin or overlapping, and probe sets.

The classes sit at +-(separation/2) u, with u = (cos theta, sin theta, 0, ...) the mean
direction rotated by `rotation` = theta in the first two coordinates. In the separable mode
every point's coordinate along u is pushed at least `gap/2` to its class's side of the
hyperplane u^T x = 0, so the data are separable by a hyperplane *through the origin*, the
homogeneous separator the max-margin SVM of `ssm_jax.max_margin` and a bias-free linear model
look for. Without that, the blobs are plain isotropic Gaussians and may overlap.

Labels are integers in {-1, +1} (positives first), as the margin losses expect. Keys are
explicit: the same key gives the same points.
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int, PRNGKeyArray
import numpy as np

from .. import _validate


class BinaryData(NamedTuple):
    """Inputs (n, p) and labels (n,) in {-1, +1}; unpacks as `X, y = data`."""

    inputs: Float[Array, "n p"]
    labels: Int[Array, " n"]


def mean_direction(rotation, dim: int = 2) -> Float[Array, " p"]:
    """u = (cos theta, sin theta, 0, ..., 0), the direction from the negative to the positive
    class mean (for dim = 1, u = (1,) and the rotation must be 0 or pi)."""
    theta = jnp.asarray(rotation, dtype=jnp.result_type(float))
    if dim == 1:
        return jnp.reshape(jnp.cos(theta), (1,))
    return jnp.zeros(dim, theta.dtype).at[0].set(jnp.cos(theta)).at[1].set(jnp.sin(theta))


def gaussian_blobs(key: PRNGKeyArray, num_positive: int, num_negative: int, *,
                   separation=4.0, rotation=0.0, dim: int = 2, spread=1.0,
                   separable: bool = True, gap=0.5) -> BinaryData:
    """Two Gaussian classes in `dim` dimensions (n = num_positive + num_negative; n < dim is
    allowed).

    **Arguments:**

    - `key`: a JAX random key.
    - `num_positive`, `num_negative`: the class sizes (each >= 1).
    - `separation`: the distance between the class means (>= 0).
    - `rotation`: theta, the angle of the mean direction u in the first two coordinates.
    - `dim`: p >= 1.
    - `spread`: the standard deviation of each coordinate around the mean (> 0).
    - `separable`: True folds every point's coordinate along u to its class's side, at
      least `gap/2` from the plane u^T x = 0, so that the classes are separable through the
      origin with margin >= gap/2 along u. False leaves plain, possibly overlapping, Gaussians.
    - `gap`: the minimal width of the empty band around u^T x = 0 when `separable` (>= 0).

    **Returns:** a `BinaryData` with the positives first.
    """
    if key is None:
        raise ValueError("`key` = None is not allowed: pass a key, e.g. jax.random.key(0).")
    num_positive = _validate.integer("num_positive", num_positive, minimum=1)
    num_negative = _validate.integer("num_negative", num_negative, minimum=1)
    dim = _validate.integer("dim", dim, minimum=1)
    _validate.number("separation", separation, low=0.0)
    _validate.number("rotation", rotation)
    _validate.number("spread", spread, low=0.0, low_open=True)
    _validate.number("gap", gap, low=0.0)
    if dim == 1 and not np.isclose(np.sin(float(rotation)), 0.0):
        raise ValueError(f"`rotation` = {rotation} is not allowed with dim = 1: expected 0 or pi.")
    n = num_positive + num_negative
    labels = jnp.concatenate([jnp.ones(num_positive, int), -jnp.ones(num_negative, int)])
    u = mean_direction(rotation, dim)
    noise = spread * jax.random.normal(key, (n, dim), dtype=u.dtype)
    inputs = labels[:, None] * (0.5 * separation) * u + noise
    if separable:
        along = inputs @ u
        # Reflect the coordinate along u onto the class's side and keep it out of the band.
        target = labels * jnp.maximum(jnp.abs(along), 0.5 * gap)
        inputs = inputs + (target - along)[:, None] * u
    return BinaryData(inputs, labels)


def probe_grid(extent=4.0, resolution: int = 41, *, center=(0.0, 0.0)) -> Float[Array, "m 2"]:
    """A square grid of resolution^2 points in 2-D, [c - extent, c + extent]^2, row-major in
    (x2, x1) so that `values.reshape(resolution, resolution)` is an image with x1 along
    columns. Use it to count predictions and to draw decision boundaries."""
    _validate.number("extent", extent, low=0.0, low_open=True)
    resolution = _validate.integer("resolution", resolution, minimum=2)
    axis = jnp.linspace(-extent, extent, resolution, dtype=jnp.result_type(float))
    x1, x2 = jnp.meshgrid(axis + center[0], axis + center[1])
    return jnp.stack([x1.ravel(), x2.ravel()], axis=1)


def grid_axes(extent=4.0, resolution: int = 41, *, center=(0.0, 0.0)):
    """The two coordinate axes of `probe_grid`, for contour plots."""
    axis = np.linspace(-extent, extent, resolution)
    return axis + center[0], axis + center[1]


def augment_bias(inputs) -> Float[Array, "n p+1"]:
    """[x, 1]: a constant feature, so that a homogeneous separator on the augmented inputs is a
    separator with a (penalized) bias on the original ones."""
    inputs = jnp.asarray(inputs)
    return jnp.concatenate([inputs, jnp.ones((inputs.shape[0], 1), inputs.dtype)], axis=1)


def importance_weights(labels, positive_weight, negative_weight=1.0) -> Float[Array, " n"]:
    """Per-example importance weights: `positive_weight` on the +1 class and `negative_weight`
    on the -1 class (each > 0), e.g. positive_weight = 2^k for k in -8..8."""
    _validate.number("positive_weight", positive_weight, low=0.0, low_open=True)
    _validate.number("negative_weight", negative_weight, low=0.0, low_open=True)
    labels = jnp.asarray(labels)
    dtype = jnp.result_type(float)
    return jnp.where(labels > 0, jnp.asarray(positive_weight, dtype),
                     jnp.asarray(negative_weight, dtype))
