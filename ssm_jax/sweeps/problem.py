"""What a sweep builds: a problem, from a member's settings to (model, objective[,
hyperparameters]), with what it can say about a whole design before anything is built.

A sweep asks a problem four things besides building members: to check a design's arrays, each
member's number of examples (for padding and size buckets), a cost key to order members by,
and closed-form predictions to record beside the results. `AbstractProblem` declares them;
`imbalance_problem` and a configuration file's problem implement them all, and a plain
function is taken as a `FunctionProblem`, which offers none of them.
"""

import abc
from collections.abc import Callable, Mapping
import inspect

import equinox as eqx
import numpy as np


class AbstractProblem(eqx.Module):
    """A family of problems, one per member of a sweep.

    Settings arrive as keywords named like the design's axes, each a number (a member built
    in Python) or traced (a vectorized build, one `vmap` over the design's arrays). The
    methods other than `__call__` take a design's arrays at once, {setting name: one value
    per member} (NumPy, never traced), and may answer None where they have nothing to say.
    """

    @abc.abstractmethod
    def __call__(self, *, pad_to: int | None = None, **settings):
        """One member.

        **Arguments:**

        - `pad_to`: build the member with this many examples, those beyond its own number
          padding (zero weight, no class, zero free features); None: unpadded. Needed where
          the number of examples depends on a traced setting.
        - `settings`: the member's settings.

        **Returns:** (model, objective) or (model, objective, hyperparameters).
        """

    @abc.abstractmethod
    def check_settings(self, settings: Mapping[str, np.ndarray]) -> None:
        """Checks a design's arrays before anything is traced.

        **Arguments:**

        - `settings`: {setting name: one value per member}.

        **Returns:** nothing. Raises `ValueError` naming the setting, the value and the member.
        """

    @abc.abstractmethod
    def num_examples(self, settings: Mapping[str, np.ndarray]) -> np.ndarray | None:
        """Each member's number of examples, without building it.

        **Arguments:**

        - `settings`: {setting name: one value per member}.

        **Returns:** an integer array, one entry per member (the padding bound and the size
        buckets come from it), or None: the sweep then builds each member abstractly to see.
        """

    @abc.abstractmethod
    def cost(self, settings: Mapping[str, np.ndarray], dynamics) -> np.ndarray | None:
        """A key to run members in increasing order of, so that a chunk holds members of
        similar cost (e.g. a predicted number of steps).

        **Arguments:**

        - `settings`: {setting name: one value per member}.
        - `dynamics`: the sweep's `Flow` or `Train` (its final time, say).

        **Returns:** one number per member, or None for the design's order.
        """

    @abc.abstractmethod
    def predict(self, settings: Mapping[str, np.ndarray]) -> dict[str, np.ndarray] | None:
        """Closed-form predictions, recorded beside the results over the design.

        **Arguments:**

        - `settings`: {setting name: one value per member}.

        **Returns:** {name: one number per member}, or None for none.
        """


def takes_pad_to(function: Callable) -> bool:
    """Whether `function` names a `pad_to` keyword (it then builds padded members)."""
    try:
        return "pad_to" in inspect.signature(function).parameters
    except (TypeError, ValueError):
        return False


class FunctionProblem(AbstractProblem):
    """A plain function of a member's settings, as a problem that offers no checks, sizes,
    cost or predictions.

    **Arguments:**

    - `build`: settings -> (model, objective[, hyperparameters]); given `pad_to` if it names
      that keyword.
    """

    build: Callable

    def __call__(self, *, pad_to: int | None = None, **settings):
        if pad_to is not None and takes_pad_to(self.build):
            settings = dict(settings, pad_to=pad_to)
        return self.build(**settings)

    def check_settings(self, settings):
        return None

    def num_examples(self, settings):
        return None

    def cost(self, settings, dynamics):
        return None

    def predict(self, settings):
        return None


def as_problem(make_problem) -> AbstractProblem:
    """`make_problem` as a problem: itself if it is one, else a `FunctionProblem`.

    **Arguments:**

    - `make_problem`: an `AbstractProblem` or a function of the member's settings.

    **Returns:** an `AbstractProblem`. Raises `ValueError` for anything else.
    """
    if isinstance(make_problem, AbstractProblem):
        return make_problem
    if not callable(make_problem):
        raise ValueError(f"`make_problem` = {make_problem!r} is not allowed: expected a "
                         "function of the design's settings returning (model, objective), "
                         "or an ssm_jax.sweeps.AbstractProblem.")
    return FunctionProblem(make_problem)
