"""A CPU host's cores as JAX devices, so that a sweep runs one chunk per core.

XLA:CPU runs the small operations of a gradient flow on one core; a sweep spreads its chunks
over the local devices, one worker thread each, so with one CPU device per core a sweep uses
the whole host. JAX fixes its CPU devices when its backends start (the first JAX operation),
so this must be called before that.

The devices then run computations inline, on the thread that calls them, not dispatched
asynchronously to XLA's pool of one thread per core: there, two devices' computations that
each wait for batched LAPACK work (an SVD of every member's target, in a vectorized build)
hold every thread of the pool that work needs, and the sweep hangs. (Builds that ran at once
could still hang inline, now and then, so a sweep builds one chunk at a time: `execute`.)
"""

import os
import warnings

import jax
from jax._src import xla_bridge

from .. import _validate


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity, which a batch scheduler sets)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def use_cpu_cores(count: int | None = None, *, name: str = "count") -> int:
    """Makes JAX's CPU backend start with `count` devices, one per core a sweep may use.

    **Arguments:**

    - `count`: CPU devices, >= 1; None for `usable_cores()`, unless the environment already
      asks for a number (`JAX_NUM_CPU_DEVICES`, or `--xla_force_host_platform_device_count`
      in `XLA_FLAGS`), which is kept.
    - `name`: what errors call `count` (a command's option).

    **Returns:** the number of CPU devices the backend has or will have.

    **Raises:** `ValueError` if `count` is not an integer >= 1, or if JAX's backends have
    already started with another number of CPU devices (then set `JAX_NUM_CPU_DEVICES` before
    the program starts, or call this right after `import jax`).
    """
    if count is not None:
        count = _validate.integer(name, count, minimum=1)
    asked = (os.environ.get("JAX_NUM_CPU_DEVICES")
             or "xla_force_host_platform_device_count" in os.environ.get("XLA_FLAGS", ""))
    if xla_bridge.backends_are_initialized():  # their devices stay as they are
        have = len(jax.devices("cpu"))
        if count is not None and count != have:
            raise ValueError(
                f"`{name}` = {count} CPU devices is not allowed here: JAX has already started "
                f"with {have}. Call use_cpu_cores before any JAX operation, or set "
                f"JAX_NUM_CPU_DEVICES={count} before the program starts.")
        return have
    if count is not None or not asked:
        jax.config.update("jax_num_cpu_devices", usable_cores() if count is None else count)
    jax.config.update("jax_cpu_enable_async_dispatch", False)  # read as the backend starts
    return len(jax.devices("cpu"))


def warn_if_dispatched(devices) -> None:
    """Warns where a sweep is to run on several CPU devices that dispatch asynchronously
    (started without `use_cpu_cores`): it can hang (see this module)."""
    if (len(devices) > 1 and devices[0].platform == "cpu"
            and jax.config.read("jax_cpu_enable_async_dispatch")):
        warnings.warn(f"{len(devices)} CPU devices dispatch computations asynchronously, "
                      "with which a sweep over them can hang in batched linear algebra: call "
                      "ssm_jax.use_cpu_cores() before any JAX operation (or set "
                      "jax.config.update('jax_cpu_enable_async_dispatch', False) there).",
                      stacklevel=3)
