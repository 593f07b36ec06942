"""What a flow integrates: the model's parameters, or a smaller state that carries the same
trajectory exactly.

Gradient flow may keep a structure that a smaller state describes: under the square loss the
features of a class move by one affine map (`class_affine`). Coordinates say how to start that
state from the parameters, how it moves, and how to read the model back from it, so that
`Flow.run` and the refill lanes integrate any of them alike. They are given to a flow as an
instance, `Flow(coordinates=ClassAffine())`, which holds no arrays; what they need of one member
(its frame, from `of`) is built inside the compiled run and travels as the solver's `args`.
"""

import abc
from typing import Any, ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp

from ..objective import AbstractObjective


def vector_field(model, objective):
    """The flow's vector field f(t, params, objective) = -grad L_t, the gradient of
    `objective.at(t)`, for the parameters of `model` (its floating-point arrays); the rest of
    the model is held fixed."""
    _, static = eqx.partition(model, eqx.is_inexact_array)

    def field(t, params, objective):
        current = objective.at(t)
        grad = jax.grad(lambda p: current(eqx.combine(p, static)))(params)
        return jax.tree_util.tree_map(jnp.negative, grad)

    return field


class AbstractCoordinates(eqx.Module):
    """The state a flow integrates for each member, and the way back to its model.

    An instance is a strategy given to `Flow(coordinates=...)`: it holds settings only, never
    arrays, so one flow serves every member. What the coordinates need of one member, its
    frame, is built by `of` inside the compiled run (so it may be traced) and carried beside
    the objective as the solver's `args`; the other methods take it first, as diffrax's
    solvers take their state.

    A new kind of coordinates provides `name`, `check`, `of`, `state`, `field`, `model` and
    `params`.
    """

    name: eqx.AbstractClassVar[str]
    """The plain name of these coordinates (`coordinates_named` takes it), kept in a flow's
    description and so in sweep stores' manifests."""

    @abc.abstractmethod
    def check(self, objective) -> None:
        """Raises a `ValueError` before any compute where these coordinates do not describe the
        flow of `objective` exactly (as far as a concrete objective shows it).

        **Arguments:**

        - `objective`: the objective, array leaves possibly stacking members.
        """

    @abc.abstractmethod
    def of(self, params, static, objective: AbstractObjective) -> Any:
        """What these coordinates need of one member, traceable.

        **Arguments:**

        - `params`, `static`: the member's initial model, as `eqx.partition(model,
          eqx.is_inexact_array)` gives it.
        - `objective`: the member's objective.

        **Returns:** the member's frame, a pytree of arrays (None where nothing is needed); a
        `ValueError` (raised while tracing, before any compute) where the coordinates do not
        describe the member's flow exactly.
        """

    @abc.abstractmethod
    def state(self, frame, params) -> Any:
        """The initial state y0, from the frame and the model's initial parameters."""

    @abc.abstractmethod
    def field(self, frame, t, y, objective: AbstractObjective, static) -> Any:
        """dy/dt at time t: the gradient flow of `objective.at(t)`, in these coordinates."""

    @abc.abstractmethod
    def model(self, frame, y, static):
        """A model with the outputs and L2 penalty of the model at y, for the metrics (it may
        compute them more cheaply than the model itself)."""

    @abc.abstractmethod
    def params(self, frame, y, static) -> Any:
        """The model's parameters at y, as `eqx.partition(model, eqx.is_inexact_array)`
        gives them."""


class Parameters(AbstractCoordinates):
    """The parameters themselves: the state is `params`, the field -grad L; any model and
    objective."""

    name: ClassVar[str] = "parameters"

    def check(self, objective):
        pass

    def of(self, params, static, objective):
        return None

    def state(self, frame, params):
        return params

    def field(self, frame, t, y, objective, static):
        return vector_field(eqx.combine(y, static), objective)(t, y, objective)

    def model(self, frame, y, static):
        return eqx.combine(y, static)

    def params(self, frame, y, static):
        return y
