"""The names that configuration files, the command line and the experiments give to models
and losses, and what they mean: the one place where such a name is read.

    losses   "square", "square_centered", "cross_entropy"        -> `losses` objects
    models   "ufm", "ssm", "ssm_class", "deep_ufm"                -> `imbalance_models` kinds
    runs     "ufm_square", "ufm_ce", "ssm"  (a model with a loss) -> (kind, loss)

Everything past this module asks the objects (`loss.square_targets`, `kind.fits_target`, ...)
instead of comparing names.
"""

from .. import _validate, losses
from ..losses import AbstractLoss
from .imbalance_models import (
    AbstractImbalanceModel,
    ClassTarget,
    DeepFreeFeatures,
    ExampleTarget,
    FreeFeatures,
)

LOSSES: dict[str, AbstractLoss] = {
    "square": losses.square,
    "square_centered": losses.square_centered,
    "cross_entropy": losses.cross_entropy,
}
"""Loss names -> losses."""

MODELS: dict[str, AbstractImbalanceModel] = {
    "ufm": FreeFeatures(),
    "ssm": ExampleTarget(),
    "ssm_class": ClassTarget(),
    "deep_ufm": DeepFreeFeatures(),
}
"""Model names of the step-imbalance problem -> how it builds them."""

RUNS: dict[str, tuple[str, str]] = {
    "ufm_square": ("ufm", "square"),
    "ufm_ce": ("ufm", "cross_entropy"),
    "ssm": ("ssm_class", "square"),
}
"""Names of a model trained with a loss (the schedules experiment's models) -> (model name,
loss name)."""


def loss_named(name: str, key: str = "loss") -> AbstractLoss:
    """The loss of a name.

    **Arguments:**

    - `name`: a key of `LOSSES`.
    - `key`: the parameter's name as the user typed it, for the error.

    **Returns:** the loss. Raises `ValueError` naming `key`, `name` and the names allowed.
    """
    _validate.choice(key, name, tuple(LOSSES))
    return LOSSES[name]


def model_named(name: str, key: str = "model") -> AbstractImbalanceModel:
    """The kind of model of a name.

    **Arguments:**

    - `name`: a key of `MODELS`.
    - `key`: the parameter's name as the user typed it, for the error.

    **Returns:** the kind. Raises `ValueError` naming `key`, `name` and the names allowed.
    """
    _validate.choice(key, name, tuple(MODELS))
    return MODELS[name]


def run_named(name: str, key: str = "models") -> tuple[AbstractImbalanceModel, AbstractLoss]:
    """The kind of model and the loss of a run's name.

    **Arguments:**

    - `name`: a key of `RUNS`.
    - `key`: the parameter's name as the user typed it, for the error.

    **Returns:** (kind, loss). Raises `ValueError` naming `key`, `name` and the names allowed.
    """
    _validate.choice(key, name, tuple(RUNS))
    model, loss = RUNS[name]
    return MODELS[model], LOSSES[loss]
