"""The `ssm-jax` command."""

from .main import app as app
