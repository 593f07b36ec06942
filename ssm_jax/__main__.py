"""`python -m ssm_jax`: the `ssm-jax` command."""

from .cli import app

app(prog_name="ssm-jax")
