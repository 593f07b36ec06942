"""Compile time measured apart from run time.

JAX reports how long tracing, lowering and XLA compilation take through `jax.monitoring`;
summing those events around a call splits its wall time into compile and run seconds while
keeping JAX's own compilation cache (a second call with the same shapes compiles nothing).
The events are summed per thread (JAX compiles on the thread that calls), so that the worker
threads of a sweep's devices, compiling at the same time, each count their own compilation
only.
"""

import threading
import time

import jax

_COMPILE_EVENTS = frozenset({
    "/jax/core/compile/jaxpr_trace_duration",
    "/jax/core/compile/jaxpr_to_mlir_module_duration",
    "/jax/core/compile/backend_compile_duration",
})
_compiled = threading.local()


def _compile_seconds() -> float:
    """This thread's compile seconds so far."""
    return getattr(_compiled, "seconds", 0.0)


def _listen(event: str, duration: float, **kwargs):
    if event in _COMPILE_EVENTS:
        _compiled.seconds = _compile_seconds() + duration


jax.monitoring.register_event_duration_secs_listener(_listen)


def timed_call(fn, *args, **kwargs):
    """Calls `fn` and waits for its result. Returns (result, compile_seconds, run_seconds)."""
    compiled_before = _compile_seconds()
    start = time.perf_counter()
    result = jax.block_until_ready(fn(*args, **kwargs))
    wall = time.perf_counter() - start
    compile_seconds = _compile_seconds() - compiled_before
    return result, compile_seconds, max(wall - compile_seconds, 0.0)
