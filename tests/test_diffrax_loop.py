"""The diffrax versions the refill lanes mirror: the installed one lies in the tested range,
pyproject.toml allows that range and no other, and refill refuses any other diffrax; the
pieces copied from diffrax's loop behave as diffeqsolve's."""

from pathlib import Path
import tomllib

import diffrax
import jax.numpy as jnp
import numpy as np
import pytest

import ssm_jax as sj
from ssm_jax.dynamics import diffrax_loop, refill

PYPROJECT = Path(__file__).parents[1] / "pyproject.toml"


def test_installed_diffrax_is_the_tested_range():
    low, high = diffrax_loop.TESTED_DIFFRAX
    assert diffrax_loop.tested_diffrax(diffrax.__version__), (
        f"diffrax {diffrax.__version__} is installed, but the refill lanes mirror diffrax "
        f">={low},<{high} (ssm_jax.dynamics.diffrax_loop.TESTED_DIFFRAX): check the copied "
        "loop against this diffrax's `_integrate.py`, then widen the range here and in "
        "pyproject.toml together.")


def test_pyproject_pins_the_tested_range():
    low, high = diffrax_loop.TESTED_DIFFRAX
    dependencies = tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"]
    pins = [d for d in dependencies if d.startswith("diffrax")]
    assert pins == [f"diffrax>={low},<{high}"], pins


@pytest.mark.parametrize("version, tested", [("0.7.2", True), ("0.7.2.post1", True),
                                             ("0.7.3", False), ("0.6.2", False),
                                             ("0.8.0", False), ("1.0", False)])
def test_versions_in_and_out_of_range(version, tested):
    assert diffrax_loop.tested_diffrax(version) == tested


def test_refill_refuses_an_untested_diffrax(monkeypatch):
    monkeypatch.setattr(diffrax, "__version__", "0.8.0")
    with pytest.raises(RuntimeError, match=r"diffrax 0\.8\.0 is installed, but the refill "
                                           r"lanes mirror .* diffrax >=0\.7\.2,<0\.7\.3"):
        refill.refill_run(sj.Flow(1.0), None, None, None, None, num_lanes=1)


def test_clip_floor_is_100_ulp_below():
    for t1 in (1.0, 400.0, 1e-300):
        floor = float(diffrax_loop.clip_floor(jnp.asarray(t1)))
        assert floor < t1
        assert np.nextafter(floor, np.inf, dtype=np.float64) < t1
        steps, t = 0, t1
        while t > floor:
            t = np.nextafter(t, -np.inf)
            steps += 1
        assert steps == 100
