"""What the refill lanes mirror of `diffrax.diffeqsolve`'s loop, and the diffrax versions that
mirror is tested against.

The lanes step diffrax's solvers and step-size controllers through their public methods
(`init`, `step`, `func`, `error_order`, `interpolation_cls`, `wrap`, `adapt_step_size`), but
the loop around them is diffrax's private code, copied: how the terms are handed over (which
decides the first step without `dt0`), the clip of the last step to t1 within 100 ULP, how
results merge and when saves are written. A member in a lane equals its `Flow.run` only while
that copy matches the diffrax installed, so the copy is pinned to `TESTED_DIFFRAX`, the range
pyproject.toml allows, and refill refuses any other diffrax (`check_diffrax`).
"""

import re

import diffrax
import jax
import jax.numpy as jnp

TESTED_DIFFRAX = ("0.7.2", "0.7.3")
"""The diffrax versions v whose loop the refill lanes mirror: TESTED_DIFFRAX[0] <= v <
TESTED_DIFFRAX[1], as pyproject.toml requires ("diffrax>=0.7.2,<0.7.3"). Widen it only after
checking the copied pieces against that diffrax's `_integrate.py` and running the refill tests.
"""


def _release(version: str) -> tuple[int, ...]:
    """The release numbers of a version string, "0.7.2.post1" -> (0, 7, 2)."""
    return tuple(int(part) for part in re.findall(r"\d+", version.split("+")[0])[:3])


def tested_diffrax(version: str) -> bool:
    """Whether diffrax `version` (a string such as "0.7.2") lies in `TESTED_DIFFRAX`."""
    low, high = TESTED_DIFFRAX
    return _release(low) <= _release(version) < _release(high)


def check_diffrax() -> None:
    """Raises a `RuntimeError` naming the installed diffrax and `TESTED_DIFFRAX` unless the
    installed diffrax lies in that range."""
    version = diffrax.__version__
    if not tested_diffrax(version):
        low, high = TESTED_DIFFRAX
        raise RuntimeError(
            f"diffrax {version} is installed, but the refill lanes mirror the loop of "
            f"diffrax.diffeqsolve as diffrax >={low},<{high} runs it "
            "(ssm_jax.dynamics.diffrax_loop.TESTED_DIFFRAX): install diffrax in that range, "
            "or run the members with a batching other than refill lanes.")


class ForwardTerm(diffrax.AbstractTerm):
    """`term` as `diffeqsolve` hands it to the solver and the controller on a forward solve:
    the same vector field and control, wrapped, since diffrax estimates a first step (without
    `dt0`) for a bare `ODETerm` only and takes 0.01 otherwise."""

    term: diffrax.AbstractTerm

    def vf(self, t, y, args):
        return self.term.vf(t, y, args)

    def contr(self, t0, t1, **kwargs):
        return self.term.contr(t0, t1, **kwargs)

    def prod(self, vf, control):
        with jax.numpy_dtype_promotion("standard"):
            return self.term.prod(vf, control)

    def vf_prod(self, t, y, args, control):
        return self.term.vf_prod(t, y, args, control)

    def is_vf_expensive(self, t0, t1, y, args):
        return self.term.is_vf_expensive(t0, t1, y, args)


def clip_floor(t1):
    """100 ULP below t1: a step that would end above it ends at t1 (`clip_to_end`)."""
    for _ in range(100):
        # The float just below, and below 0 the smallest normal (as diffrax steps down).
        t1 = jnp.where(t1 == 0, -jnp.finfo(t1.dtype).tiny, jnp.nextafter(t1, -jnp.inf))
    return t1


def clip_to_end(tprev, tnext, t1, floor, keep_step):
    """The next step's end, clipped to t1 where it comes within 100 ULP of it (`floor`), so
    that no interval is too short for a stable dense output; after a rejected step, halfway
    to t1 instead."""
    clipped = jnp.where(keep_step, t1, tprev + 0.5 * (t1 - tprev))
    return jnp.where(tnext > floor, clipped, tnext)


def merge_results(keep_step, previous, solver_result, controller_result):
    """The member's diffrax result after a step: the first failure of the run so far, the
    solver's (on an accepted step) or the controller's."""
    success = diffrax.RESULTS.successful
    solver_result = diffrax.RESULTS.where(keep_step, solver_result, success)
    result = diffrax.RESULTS.where(previous == success, solver_result, previous)
    return diffrax.RESULTS.where(result == success, controller_result, result)


def successful():
    """diffrax's success, as an array leaf that lanes carry and `vmap` batches."""
    return jax.tree_util.tree_map(jnp.asarray, diffrax.RESULTS.successful)
