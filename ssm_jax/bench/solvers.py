"""Work-precision measurements: each solver over a ladder of tolerances (or step counts for a
fixed-step method), with the error against a problem's known solution and the work it took.

The rules of a fair comparison: tolerances are arrays, so a solver compiles once per problem
and its compile time is reported apart (a call that compiled is no run-time sample); every
run is timed until ready;
vector-field evaluations are counted (from the tableau for explicit Runge-Kutta methods, by a
host callback in the vector field for the others, in a separate untimed run).
"""

from collections.abc import Callable

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp

from .. import _validate
from .._timing import timed_call
from ..dynamics import flow
from ..dynamics.base import compiled_run
from ..dynamics.flow import Flow
from ..dynamics.trajectory import STATUS
from .problems import BenchProblem

# name -> (solver, kind); kind "fixed" runs on a ladder of step counts, the others on tolerances.
SOLVERS = {
    "Euler": (diffrax.Euler(), "fixed"),
    "Heun": (diffrax.Heun(), "explicit"),
    "Midpoint": (diffrax.Midpoint(), "explicit"),
    "Ralston": (diffrax.Ralston(), "explicit"),
    "Bosh3": (diffrax.Bosh3(), "explicit"),
    "Tsit5": (diffrax.Tsit5(), "explicit"),
    "Dopri5": (diffrax.Dopri5(), "explicit"),
    "Dopri8": (diffrax.Dopri8(), "explicit"),
    "Kvaerno3": (diffrax.Kvaerno3(), "implicit"),
    "Kvaerno5": (diffrax.Kvaerno5(), "implicit"),
}
DTYPES = {"float32": jnp.float32, "float64": jnp.float64}


def _cast(tree, dtype):
    return jax.tree_util.tree_map(
        lambda x: x.astype(dtype) if eqx.is_inexact_array(x) else x, tree)


def _controller(kind, tolerance, dtype):
    """The controller for one rung, with its tolerance as an array leaf (no recompilation)."""
    if kind == "fixed":
        return diffrax.ConstantStepSize()
    rtol = jnp.asarray(tolerance, dtype)
    return flow.default_controller(rtol, rtol * 1e-3)


class _Counted(eqx.Module):
    """An objective that counts its evaluations on the host: the flow's vector field
    evaluates it once per call."""

    objective: eqx.Module
    count: object = eqx.field(static=True)

    def __call__(self, model):
        jax.debug.callback(self.count)
        return self.objective(model)

    def at(self, t):
        return _Counted(self.objective.at(t), self.count)

    def jump_times(self):
        return self.objective.jump_times()


def _nothing(model, objective):
    return jnp.zeros(())


def count_evals(problem: BenchProblem, solver, controller, dt0, max_steps, dtype) -> int:
    """Vector-field calls in one solve, counted on the host. A forward-mode Jacobian (its
    Jacobian-vector products batched into one call) counts once, so for implicit solvers this
    undercounts the work: compare them in seconds."""
    calls = [0]
    model, objective = _cast((problem.model, problem.objective), dtype)
    params, static = eqx.partition(model, eqx.is_inexact_array)
    counted = _Counted(objective, lambda: calls.__setitem__(0, calls[0] + 1))
    dynamics = Flow(ts=problem.ts.astype(dtype), solver=solver, stepsize_controller=controller,
                    dt0=dt0, max_steps=max_steps)
    jax.block_until_ready(dynamics.run(params, static, counted, None, _nothing))
    jax.effects_barrier()
    return calls[0]


def _timed_run(run, min_seconds):
    """Calls `run` until its calls that compiled nothing add up to `min_seconds` (at most 20
    of them). Returns (result, compile seconds, best run seconds): the first call of a ladder
    compiles and is no run-time sample; the minimum is the least disturbed by other load."""
    compiled, best, total, samples = 0.0, float("inf"), 0.0, 0
    for _ in range(40):
        result, compile_s, run_s = timed_call(run)
        compiled += compile_s
        if compile_s == 0.0:
            best, total, samples = min(best, run_s), total + run_s, samples + 1
            if total >= min_seconds or samples == 20:
                break
    return result, compiled, best


def work_precision(problem: BenchProblem, solver: str, ladder, *, dtype: str = "float64",
                   max_steps: int = 2**16, precision: str = "highest",
                   min_seconds: float = 0.05,
                   progress: Callable[[dict], None] | None = None) -> list[dict]:
    """One solver on one problem over a ladder.

    **Arguments:**

    - `problem`: a `BenchProblem`.
    - `solver`: a name from `SOLVERS`.
    - `ladder`: relative tolerances (rtol; atol = 1e-3 rtol), or numbers of steps over
      [ts[0], ts[-1]] for a fixed-step solver.
    - `dtype`: "float32" or "float64", the precision of the state and the times.
    - `max_steps`: a run that needs more ends with status "max_steps" (and error NaN).
    - `precision`: matmul precision ("highest": never TF32 or bf16 on accelerators).
    - `min_seconds`: repeat a fast run until this much time has passed; report the best.
    - `progress`: called with each rung's record as soon as it is measured.

    **Returns:** one record (dict) per rung: problem, solver, kind, dtype, tolerance or step
    count, error (NaN where the run did not finish: status not "ok"), steps, rejected steps,
    vector-field evaluations, compile and run seconds, status.
    """
    if solver not in SOLVERS:
        raise ValueError(f"`solver` = {solver!r} is not allowed: choose from {list(SOLVERS)}.")
    if dtype not in DTYPES:
        raise ValueError(f"`dtype` = {dtype!r} is not allowed: choose from {list(DTYPES)}.")
    method, kind = SOLVERS[solver]
    for rung in ladder:  # checked here: a bad rung would otherwise reach the compiled solve
        if kind == "fixed":
            _validate.integer("ladder", rung, minimum=1)
        else:
            _validate.number("ladder", rung, low=0.0, low_open=True)
    max_steps = _validate.integer("max_steps", max_steps, minimum=1)
    jdtype = DTYPES[dtype]
    model, objective = _cast((problem.model, problem.objective), jdtype)
    params, static = eqx.partition(model, eqx.is_inexact_array)
    ts = problem.ts.astype(jdtype)
    span = float(ts[-1] - ts[0])
    records = []
    for rung in ladder:
        controller = _controller(kind, rung, jdtype)
        dt0 = jnp.asarray(span / rung, jdtype) if kind == "fixed" else None
        dynamics = Flow(ts=ts, solver=method, stepsize_controller=controller, dt0=dt0,
                        max_steps=max_steps, precision=precision)
        args = (dynamics, params, static, objective, None, problem.observe, False, {})
        with jax.default_matmul_precision(precision):
            (observed, _, stats), compile_s, run_s = _timed_run(
                lambda a=args: compiled_run(*a), min_seconds)
        status = STATUS[int(stats["status"])]
        steps = int(stats["num_steps"])
        if kind == "implicit":
            evals = count_evals(problem, method, controller, dt0, max_steps, jdtype)
        else:
            evals = int(flow.vector_field_evals(method, steps))
        records.append({
            "problem": problem.name, "solver": solver, "kind": kind, "dtype": dtype,
            "rtol": float(rung) if kind != "fixed" else float("nan"),
            "fixed_steps": int(rung) if kind == "fixed" else 0,
            "error": problem.error(observed) if status == "ok" else float("nan"),
            "steps": steps, "rejected_steps": int(stats["num_rejected_steps"]),
            "vector_field_evals": evals, "compile_seconds": compile_s, "run_seconds": run_s,
            "status": status,
        })
        if progress is not None:
            progress(records[-1])
    return records


def default_ladder(kind: str, dtype: str, quick: bool = False):
    """Tolerances 1e-3 .. 1e-10 (float64) or 1e-3 .. 1e-6 (float32); for a fixed-step
    method 2^5 .. 2^15 steps. `quick` keeps three: every other of the first five."""
    if kind == "fixed":
        ladder = [2**k for k in range(5, 16, 2)]
    else:
        ladder = [10.0**-k for k in range(3, 11 if dtype == "float64" else 7)]
    return ladder[:5:2] if quick else ladder


def benchmark_size(num_problems: int, solvers, dtypes=("float64",), *, quick=False) -> int:
    """How many rungs `run_benchmark` measures (for a progress bar's total)."""
    return num_problems * sum(len(default_ladder(SOLVERS[s][1], d, quick))
                              for s in solvers for d in dtypes)


def run_benchmark(problems, solvers, dtypes=("float64",), *, quick=False, max_steps=2**16,
                  precision="highest", progress=None) -> list[dict]:
    """Every solver on every problem in every dtype, over the default ladders.

    **Arguments:**

    - `problems`: `BenchProblem`s.
    - `solvers`: names from `SOLVERS`.
    - `dtypes`: "float64" and/or "float32".
    - `quick`, `max_steps`, `precision`: as in `default_ladder` and `work_precision`.
    - `progress`: called with each rung's record as soon as it is measured.

    **Returns:** the records of `work_precision`, every pair's joined.
    """
    records = []
    for problem in problems:
        for dtype in dtypes:
            for solver in solvers:
                ladder = default_ladder(SOLVERS[solver][1], dtype, quick)
                records += work_precision(problem, solver, ladder, dtype=dtype,
                                          max_steps=max_steps, precision=precision,
                                          progress=progress)
    return records


def cost_to_reach(records: list[dict], target: float) -> dict:
    """For each (problem, dtype, solver), the cheapest rung whose error is at most `target`:
    {(problem, dtype, solver): record}; pairs that never reach it (or only fail: NaN error)
    are absent."""
    best = {}
    for r in records:
        key = (r["problem"], r["dtype"], r["solver"])
        if r["error"] <= target and (key not in best or
                                     r["run_seconds"] < best[key]["run_seconds"]):
            best[key] = r
    return best

