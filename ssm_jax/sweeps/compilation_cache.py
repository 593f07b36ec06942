"""The persistent cache of compiled programs that the command line and the jobs of a submitted
sweep keep, so that running the same sweep again (resuming it, a shard requeued or submitted
again) does not compile again."""

import os


def enable_compilation_cache() -> None:
    """Keeps compiled programs on disk: in `SSM_JAX_CACHE_DIR` if set, else
    `~/.cache/ssm_jax/xla`.

    **Returns:** nothing.
    """
    import jax

    folder = os.environ.get("SSM_JAX_CACHE_DIR",
                            os.path.join(os.path.expanduser("~"), ".cache", "ssm_jax", "xla"))
    jax.config.update("jax_compilation_cache_dir", folder)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
