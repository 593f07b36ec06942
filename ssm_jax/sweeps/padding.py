"""Padding to a common number of examples, so that problems of different sizes share one
compilation and one batch.

Padded examples carry zero weight and a label of no class (the loss's `padding_label`; -1 for
a target fit): they receive no gradient, contribute nothing to the objective, and belong to no
class in the metrics. Free per-example parameters (UFM features) are padded with zero columns,
which stay zero under the flow. Together with a padding-invariant error norm in the step-size
controller, a padded run takes the very same steps as the unpadded one.

Models and objectives pad themselves (`AbstractModel.pad_examples`,
`AbstractPaddableObjective.pad_examples`); this module applies that to a sweep's members.
"""

from ..models import AbstractModel
from ..objective import AbstractPaddableObjective


def pad_examples(obj, size: int):
    """`obj` padded to `size` examples.

    **Arguments:**

    - `obj`: a model (an `AbstractModel`: those without per-example parameters are returned
      as they are) or an objective that can pad (`Objective`, `TargetFit`).
    - `size`: the number of examples after padding, at least the current number.

    **Returns:** an object of the same type whose per-example arrays have `size` entries.
    Raises `ValueError` for an object that cannot pad.
    """
    if not isinstance(obj, (AbstractModel, AbstractPaddableObjective)):
        raise ValueError(f"`obj` = {type(obj).__name__} cannot be padded to more examples: "
                         "expected an ssm_jax.AbstractModel or an objective that pads itself "
                         "(ssm_jax.objective.AbstractPaddableObjective, such as Objective or "
                         "TargetFit).")
    return obj.pad_examples(size)


def pad_problem(problem, size: int):
    """A member (model, objective, hyperparameters) padded to `size` examples.

    **Arguments:**

    - `problem`: (model, objective, hyperparameters).
    - `size`: the number of examples after padding.

    **Returns:** the padded member; hyperparameters are per member, so they stay as they are.
    """
    model, objective, hyper = problem
    return pad_examples(model, size), pad_examples(objective, size), hyper
