import jax

# Oracles are checked to tight tolerances: every test runs in float64.
jax.config.update("jax_enable_x64", True)
