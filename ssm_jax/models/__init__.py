"""Models as Equinox modules: parameters only. Each maps its inputs (or, for free-feature
models, nothing) to outputs of shape (n, k), one row per example.

- `SSM`: two factors W (k x d) and H (d x m) whose product fits a target matrix.
- `UFM`: classifier W (k x d), one free feature column per example H (d x n), optional bias.
- `DeepLinear`: W_L ... W_1 applied to inputs X (n x p), or to free features H (deep UFM).
- `Linear`, `TwoLayerReLU`: binary classifiers on inputs, for separable data.

`Linear` and `DeepLinear` are `AbstractLinearPredictor`s: they declare their end-to-end
linear predictor, which the separable-data metrics compare with the max-margin direction.
- `MLP`, `CNN`: small networks with optional batch norm and dropout, for the digits.

A model pads itself to more examples (`pad_examples`): its `per_example` fields get zero
slices, so that sweep members of different sizes share one batch.

Each has a small Gaussian initialization (entries of standard deviation `init_scale`) and an
aligned, balanced one (`.aligned(...)`) under which gradient flow has a closed form.
"""

from ._base import (
    AbstractLinearPredictor as AbstractLinearPredictor,
    AbstractModel as AbstractModel,
    aligned_factors as aligned_factors,
    output_shape as output_shape,
    pad_axis as pad_axis,
    per_example as per_example,
    target_modes as target_modes,
)
from .deep_linear import DeepLinear as DeepLinear
from .linear import Linear as Linear
from .networks import CNN as CNN, MLP as MLP, AbstractNetwork as AbstractNetwork
from .ssm import SSM as SSM
from .two_layer_relu import TwoLayerReLU as TwoLayerReLU
from .ufm import UFM as UFM
