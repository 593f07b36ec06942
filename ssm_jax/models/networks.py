"""Small real networks for images (the digits, MNIST, CIFAR-10): an MLP and a CNN, each with
optional batch norm and dropout, both exposing their penultimate features (the network's
counterpart of the UFM's free features H).

Networks act on a whole batch, images (n, h, w) or (n, channels, h, w) -> logits (n, k),
because batch norm needs the batch. Batch norm here is "precise" batch norm: training steps
normalize with the batch's statistics, and evaluation with the statistics of the whole training
set at the current weights (`network.statistics(x_train)`), computed when needed, instead of
running averages carried from step to step. That leaves no state to thread through the training
scan or to vmap over seeds (and no running-average momentum to choose), and for full-batch
training it is exactly the normalization the steps used.

Convolutions are written as a matmul on 3x3 patches (`Conv3x3`) rather than with
`eqx.nn.Conv2d`: vmapped over a stack of networks, XLA's CPU convolution turns into a grouped
convolution about a hundred times slower than the batched matmul the patch form becomes.

Dropout's rate is a call argument, an array like the learning rate, so that runs with and
without dropout share one compilation; its key is explicit.
"""

import abc

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray
import numpy as np

from .. import _validate
from ._base import AbstractModel, check_key

_EPS = 1e-5


class BatchNorm(eqx.Module):
    """Normalizes each channel (feature) over the batch and spatial axes, then scales and
    shifts it by learned `weight` and `bias`.

    **Arguments:**

    - `channels`: the size of axis 1 of the inputs it will see.
    """

    weight: Float[Array, " c"]
    bias: Float[Array, " c"]

    def __init__(self, channels: int):
        self.weight = jnp.ones(channels)
        self.bias = jnp.zeros(channels)

    @staticmethod
    def statistics(x: Array) -> tuple[Array, Array]:
        """Mean and variance per channel (axis 1) over every other axis."""
        axes = (0,) + tuple(range(2, x.ndim))
        return jnp.mean(x, axis=axes), jnp.var(x, axis=axes)

    def __call__(self, x: Array, statistics: tuple[Array, Array]) -> Array:
        mean, var = statistics
        shape = (1, -1) + (1,) * (x.ndim - 2)
        scale = self.weight * jax.lax.rsqrt(var + _EPS)
        return (x - mean.reshape(shape)) * scale.reshape(shape) + self.bias.reshape(shape)


class Conv3x3(eqx.Module):
    """A 3x3 convolution with zero padding 1 and a stride, on batches (n, c_in, h, w).

    **Arguments:**

    - `in_channels`, `out_channels`: channels in and out.
    - `stride`: 1 keeps h x w; 2 halves it.
    - `key`: initialization key (uniform in +-1/sqrt(fan-in), as `eqx.nn.Conv2d`).
    """

    weight: Float[Array, "o i 3 3"]
    bias: Float[Array, " o"]
    stride: int = eqx.field(static=True)

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, *,
                 key: PRNGKeyArray):
        wkey, bkey = jax.random.split(key)
        bound = 1.0 / (9 * in_channels) ** 0.5
        self.weight = jax.random.uniform(wkey, (out_channels, in_channels, 3, 3),
                                         minval=-bound, maxval=bound)
        self.bias = jax.random.uniform(bkey, (out_channels,), minval=-bound, maxval=bound)
        self.stride = stride

    def __call__(self, x: Float[Array, "n i h w"]) -> Float[Array, "n o h2 w2"]:
        h, w = x.shape[-2:]
        padded = jnp.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
        s = self.stride
        patches = jnp.stack([padded[:, :, di:di + h:s, dj:dj + w:s]
                             for di in range(3) for dj in range(3)], axis=2)  # (n, i, 9, ..)
        kernel = self.weight.reshape(*self.weight.shape[:2], 9)
        return jnp.einsum("nipyx,oip->noyx", patches, kernel) + self.bias[:, None, None]


def _dropout(x, rate, key):
    if key is None:
        return x
    rate = jnp.asarray(rate, x.dtype)
    keep = jax.random.bernoulli(key, 1.0 - rate, x.shape)
    # rate = 0 keeps everything and scales by 1: dropout off within the same compilation.
    return jnp.where(keep, x / jnp.maximum(1.0 - rate, 1e-6), 0.0)


def _image_shape(image_shape) -> tuple[int, int, int]:
    """(channels, h, w) from (h, w) or (channels, h, w)."""
    shape = tuple(np.atleast_1d(image_shape))
    if len(shape) not in (2, 3) or not all(isinstance(v, (int, np.integer)) and v >= 1
                                           for v in shape):
        raise ValueError(f"`image_shape` = {image_shape!r} is not allowed: expected (h, w) or "
                         "(channels, h, w), integers >= 1.")
    return tuple(int(v) for v in ((1,) * (3 - len(shape)) + shape))


class AbstractNetwork(AbstractModel):
    """A model of images: a batch -> logits network made of hidden blocks (layer, optional
    batch norm, ReLU, dropout) and a linear head, whose penultimate features are exposed by
    `features`. Batch-norm statistics are passed explicitly: None normalizes with the batch
    itself (a training step), `statistics(x_train)` evaluates as the training set does.

    Subclasses give the blocks' `layers` and `norms` (None without batch norm), the `head`,
    `_prepare` (images to the first layer's input) and `_flatten_after`.
    """

    layers: eqx.AbstractVar[tuple]
    norms: eqx.AbstractVar[tuple | None]
    head: eqx.AbstractVar[eqx.nn.Linear]

    @abc.abstractmethod
    def _prepare(self, x: Array) -> Array:
        """Images (n, h, w) or (n, channels, h, w) -> the first layer's input."""

    @abc.abstractmethod
    def _flatten_after(self) -> int:
        """The block after whose output feature maps are flattened."""

    def _forward(self, x, statistics, dropout, key):
        x = self._prepare(x)
        used = []
        keys = [None] * len(self.layers) if key is None else jax.random.split(key,
                                                                                len(self.layers))
        for i, layer in enumerate(self.layers):
            x = layer(x) if isinstance(layer, Conv3x3) else jax.vmap(layer)(x)
            if self.norms is not None:
                stats = BatchNorm.statistics(x) if statistics is None else statistics[i]
                used.append(stats)
                x = self.norms[i](x, stats)
            x = _dropout(jax.nn.relu(x), dropout, keys[i])
            if i == self._flatten_after():
                x = x.reshape(x.shape[0], -1)
        return x, tuple(used) if self.norms is not None else None

    def statistics(self, x: Float[Array, "n ..."]):
        """Batch-norm statistics of `x` (the training set) at the current weights, for
        evaluation; None without batch norm."""
        return self._forward(x, None, 0.0, None)[1]

    def features(self, x: Float[Array, "n ..."], *, statistics=None, dropout=0.0,
                 key: PRNGKeyArray | None = None) -> Float[Array, "n d"]:
        """The penultimate features, (n, d).

        **Arguments:**

        - `x`: images.
        - `statistics`: batch-norm statistics from `statistics(x_train)` for evaluation; None
          normalizes with `x`'s own (a training step).
        - `dropout`: the dropout rate (0 is off); applied only when `key` is given.
        - `key`: dropout's key; None for evaluation.
        """
        return self._forward(x, statistics, dropout, key)[0]

    def __call__(self, x: Float[Array, "n ..."], *, statistics=None, dropout=0.0,
                 key: PRNGKeyArray | None = None) -> Float[Array, "n k"]:
        """Logits (n, k); arguments as for `features`."""
        h = self.features(x, statistics=statistics, dropout=dropout, key=key)
        return jax.vmap(self.head)(h)


class MLP(AbstractNetwork):
    """A two-hidden-layer perceptron on the flattened image.

    **Arguments:**

    - `num_classes`: outputs k.
    - `width`: units per hidden layer.
    - `image_shape`: (h, w) or (channels, h, w) of the images; default the 8x8 digits.
    - `batch_norm`: batch norm after each hidden linear layer.
    - `key`: initialization key.
    """

    layers: tuple
    norms: tuple | None
    head: eqx.nn.Linear

    def __init__(self, num_classes: int, width: int = 128, *, image_shape=(8, 8),
                 batch_norm: bool = False, key: PRNGKeyArray):
        _validate.integer("num_classes", num_classes, minimum=2)
        _validate.integer("width", width, minimum=1)
        channels, h, w = _image_shape(image_shape)
        check_key(key)
        k1, k2, k3 = jax.random.split(key, 3)
        self.layers = (eqx.nn.Linear(channels * h * w, width, key=k1),
                       eqx.nn.Linear(width, width, key=k2))
        self.norms = (BatchNorm(width), BatchNorm(width)) if batch_norm else None
        self.head = eqx.nn.Linear(width, num_classes, key=k3)

    def _prepare(self, x):
        return x.reshape(x.shape[0], -1)

    def _flatten_after(self):
        return -1


class CNN(AbstractNetwork):
    """A small convolutional network: two 3x3 convolutions (by default the second with
    stride 2, 8x8 -> 4x4) and one hidden linear layer.

    **Arguments:**

    - `num_classes`: outputs k.
    - `channels`: channels of the two convolutions.
    - `width`: units of the hidden linear layer (the penultimate features).
    - `image_shape`: (h, w) or (channels, h, w) of the images; default the 8x8 digits.
    - `strides`: the two convolutions' strides, 1 or 2 each (2 halves h and w, rounding up).
    - `batch_norm`: batch norm after each convolution and the hidden linear layer.
    - `key`: initialization key.
    """

    layers: tuple
    norms: tuple | None
    head: eqx.nn.Linear

    def __init__(self, num_classes: int, channels: tuple[int, int] = (16, 32),
                 width: int = 64, *, image_shape=(8, 8), strides=(1, 2),
                 batch_norm: bool = False, key: PRNGKeyArray):
        _validate.integer("num_classes", num_classes, minimum=2)
        if np.ndim(channels) != 1 or np.size(channels) != 2:
            raise ValueError(f"`channels` = {channels!r} is not allowed: expected the channels "
                             "of the two convolutions, two integers >= 1.")
        c1, c2 = (_validate.integer("channels", c, minimum=1) for c in channels)
        _validate.integer("width", width, minimum=1)
        c0, h, w = _image_shape(image_shape)
        if np.shape(strides) != (2,) or not all(
                type(s) is not bool and s in (1, 2) for s in strides):
            raise ValueError(f"`strides` = {strides!r} is not allowed: expected the strides "
                             "of the two convolutions, each 1 or 2.")
        for s in strides:  # a 3x3 convolution with padding 1 keeps ceil(side / stride)
            h, w = -(-h // s), -(-w // s)
        check_key(key)
        k1, k2, k3, k4 = jax.random.split(key, 4)
        self.layers = (
            Conv3x3(c0, c1, stride=int(strides[0]), key=k1),
            Conv3x3(c1, c2, stride=int(strides[1]), key=k2),
            eqx.nn.Linear(c2 * h * w, width, key=k3),
        )
        self.norms = (BatchNorm(c1), BatchNorm(c2), BatchNorm(width)) if batch_norm else None
        self.head = eqx.nn.Linear(width, num_classes, key=k4)

    def _prepare(self, x):
        return x[:, None] if x.ndim == 3 else x  # grey images: one input channel

    def _flatten_after(self):
        return 1
