"""What a flow integrates: the model's parameters, or a smaller state that carries the same
trajectory exactly.

Gradient flow may keep a structure that a smaller state describes: under the square loss the
features of a class move by one affine map (`class_affine`). Coordinates say how to start that
state from the parameters, how it moves, and how to read the model back from it, so that
`Flow.run` and the refill lanes integrate any of them alike. `Flow(coordinates=...)` names
them (`COORDINATES`); `of` builds them for one member, inside the compiled run.
"""

import abc
from typing import Any

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
    """The state a flow integrates for one member, and the way back to its model.

    A new kind of coordinates provides `of`, `state`, `field`, `model` and `params`; its
    array fields are what it needs of the member (built inside the compiled run, so they may
    be traced), carried beside the objective as the solver's `args`.
    """

    @classmethod
    @abc.abstractmethod
    def of(cls, params, static, objective: AbstractObjective) -> "AbstractCoordinates":
        """These coordinates for one member, traceable; a `ValueError` (raised while
        tracing, before any compute) where they do not describe its flow exactly."""

    @abc.abstractmethod
    def state(self, params) -> Any:
        """The initial state y0, from the model's initial parameters."""

    @abc.abstractmethod
    def field(self, t, y, objective: AbstractObjective, static) -> Any:
        """dy/dt at time t: the gradient flow of `objective.at(t)`, in these coordinates."""

    @abc.abstractmethod
    def model(self, y, static):
        """A model with the outputs and L2 penalty of the model at y, for the metrics (it may
        compute them more cheaply than the model itself)."""

    @abc.abstractmethod
    def params(self, y, static) -> Any:
        """The model's parameters at y, as `eqx.partition(model, eqx.is_inexact_array)`
        gives them."""


class Parameters(AbstractCoordinates):
    """The parameters themselves: the state is `params`, the field -grad L."""

    @classmethod
    def of(cls, params, static, objective):
        return cls()

    def state(self, params):
        return params

    def field(self, t, y, objective, static):
        return vector_field(eqx.combine(y, static), objective)(t, y, objective)

    def model(self, y, static):
        return eqx.combine(y, static)

    def params(self, y, static):
        return y
