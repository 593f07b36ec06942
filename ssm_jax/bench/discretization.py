"""How far discrete gradient descent with step eta is from the gradient flow it discretizes.

GD is Euler's method on the flow, so its global error at fixed times is first order in eta;
SGD adds sampling noise whose effect on the path shrinks only like eta^(1/2).
"""

from collections.abc import Callable

import jax
import numpy as np
import optax

from .. import _validate
from ..dynamics.discrete import train
from .problems import BenchProblem


def gd_vs_flow(problem: BenchProblem, steps_per_save=(2, 4, 8, 16, 32, 64), *,
               batch_size: int | None = None, seed: int = 0,
               progress: Callable[[dict], None] | None = None) -> list[dict]:
    """GD (or SGD with `batch_size`) at step sizes eta = (save interval) / m for each m in
    `steps_per_save`, recorded at the problem's save times and compared with its reference.

    **Arguments:**

    - `problem`: a `BenchProblem` whose save times are evenly spaced from 0 (every one whose
      reference is at linear times).
    - `steps_per_save`: the values of m, integers >= 1.
    - `batch_size`: SGD's batch size; None for full-batch GD.
    - `seed`: the key of SGD's batches.
    - `progress`: called with each record as soon as its run ends.

    **Returns:** one record per eta: problem, method, eta, steps, error (as
    `BenchProblem.error`; NaN where the run did not finish: status not "ok"), status.
    """
    ts = np.asarray(problem.ts)
    interval = ts[1] - ts[0]
    if ts[0] != 0.0 or not np.allclose(np.diff(ts), interval):
        raise ValueError(f"`problem` = {problem.name!r} is not allowed: GD is compared at "
                         "evenly spaced save times from 0.")
    for m in steps_per_save:
        _validate.integer("steps_per_save", m, minimum=1)
    records = []
    for m in steps_per_save:
        eta = float(interval / m)
        traj = train(problem.model, problem.objective, optax.sgd(eta), m * (len(ts) - 1),
                     record_every=m, batch_size=batch_size, key=jax.random.key(seed),
                     metrics=problem.observe)
        status = traj.status
        records.append({"problem": problem.name, "method": "SGD" if batch_size else "GD",
                        "eta": eta, "steps": m * (len(ts) - 1),
                        "error": problem.error(traj.metrics) if status == "ok"
                        else float("nan"), "status": status})
        if progress is not None:
            progress(records[-1])
    return records


def convergence_order(records: list[dict]) -> float:
    """The fitted slope of log error against log eta over the finite errors (1 for GD); NaN
    with fewer than two."""
    pts = np.array([(r["eta"], r["error"]) for r in records if np.isfinite(r["error"])])
    if len(pts) < 2:
        return float("nan")
    return float(np.polyfit(np.log(pts[:, 0]), np.log(pts[:, 1]), 1)[0])
