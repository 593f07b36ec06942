"""The result of a run of gradient flow or of discrete training."""

from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float
import numpy as np

from ..metrics.per_class import learning_time

STATUS = ("ok", "max_steps", "nonfinite", "failed")
"""Run status codes: stats["status"] indexes this tuple."""


def status_code(reached_max_steps, failed, final_params):
    """One status code per run, computed inside jit so that a diverged member of a batch is
    reported, not raised."""
    finite = jnp.all(jnp.stack([jnp.all(jnp.isfinite(x))
                                for x in jax.tree_util.tree_leaves(final_params)]))
    code = jnp.where(failed, 3, jnp.where(reached_max_steps, 1, 0))
    return jnp.where(finite, code, 2)


class Trajectory(eqx.Module):
    """Recorded metrics along one run, the final model and solver statistics.

    **Fields:**

    - `ts`: save times (T,): flow time for `gradient_flow`, the step count for `train`.
    - `metrics`: name -> array with time on axis 0, e.g. "class_accuracy" (T, k),
      "class_progress" (T, k), "mode_strength" (T, r), "loss" (T,).
    - `final`: the model at the last time.
    - `stats`: "num_steps", "num_accepted_steps", "num_rejected_steps",
      "num_vector_field_evals" (NaN where the solver's count is not known in closed form),
      "status" (index into `STATUS`), "compile_seconds", "run_seconds".
    - `params`: the model at every save time (leading axis T), when asked for.
    """

    ts: Float[Array, " T"]
    metrics: dict[str, Array]
    final: Any
    stats: dict[str, Any]
    params: Any = None

    @property
    def status(self) -> str | np.ndarray:
        """The status as words ("ok", "max_steps", "nonfinite", "failed")."""
        codes = np.asarray(self.stats["status"])
        words = np.array(STATUS)[codes]
        return str(words) if words.ndim == 0 else words

    def learning_times(self, level=0.5) -> Float[Array, "... k"]:
        """Per-class learning times: the first time each class's mean progress reaches `level`
        (in (0, 1)); NaN where it never does within `ts`, and for every class where the run
        did not end ok (`status`), whose records cannot be trusted to hold the crossing."""
        if "class_progress" not in self.metrics:
            raise ValueError(f"This trajectory recorded no `class_progress` (it recorded "
                             f"{sorted(self.metrics)}): record the objective's metrics to read "
                             "learning times.")
        return learning_time(self.ts, self.metrics["class_progress"], level,
                             status=self.stats.get("status"))
