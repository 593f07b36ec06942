"""Compile time measured apart from run time, per thread: two threads compiling at once (a
sweep's devices) each count their own compilation, never the other's."""

import threading
import time

import jax
import jax.numpy as jnp

from ssm_jax._timing import timed_call


def _program(n: int):
    def f(x):
        for i in range(n):
            x = jnp.sin(x) * 1.0001 + i
        return x

    return jax.jit(f)


def test_concurrent_compilations_are_counted_by_their_own_thread():
    seconds = {}

    def compile_and_run(name, n):
        seconds[name] = timed_call(_program(n), jnp.ones(3))[1]

    threads = [threading.Thread(target=compile_and_run, args=(i, 300 + i)) for i in range(2)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - start
    # Each thread's compile seconds fit in the wall time they shared (summed over both
    # threads they would not, had each counted the other's too).
    assert all(0 < s <= wall for s in seconds.values()), (seconds, wall)
    assert sum(seconds.values()) > 1.2 * max(seconds.values())
    _, compile_s, _ = timed_call(_program(300), jnp.ones(3))  # a new function: compiled
    assert compile_s > 0
