import os
from pathlib import Path
import shutil
import tempfile

import jax
import pytest

# Oracles are checked to tight tolerances: every test runs in float64.
jax.config.update("jax_enable_x64", True)
# The backends start here, with JAX's CPU devices as the environment sets them, so that a
# command run in-process (`ssm-jax sweep` would take one CPU device per core) changes nothing.
jax.devices()

HOME_CACHES = {
    "SSM_JAX_CACHE_DIR": "ssm_jax_xla",  # the CLI's compilation cache (~/.cache/ssm_jax/xla)
    "MPLCONFIGDIR": "matplotlib",         # matplotlib's font cache (~/.cache/matplotlib)
    "IPYTHONDIR": "ipython",              # the notebook kernels' profile (~/.ipython)
    "JUPYTER_RUNTIME_DIR": "jupyter_runtime",  # kernel connection files (~/.local/share)
}
"""What the test run would otherwise write under the user's home, and the folder of pytest's
cache (.pytest_cache, kept between runs, so compiled programs stay warm) that takes it."""


def pytest_configure(config):
    """Points every cache in `HOME_CACHES` away from the user's home for the whole run, before
    any test module is imported; the commands and notebook kernels the tests start inherit
    the environment. A cache folder someone set beforehand is kept."""
    cache = getattr(config, "cache", None)  # None with `-p no:cacheprovider`
    root = Path(cache.mkdir("home")) if cache is not None else Path(
        tempfile.mkdtemp(prefix="tests_home_"))
    for variable, folder in HOME_CACHES.items():
        if variable not in os.environ:
            (root / folder).mkdir(parents=True, exist_ok=True)
            os.environ[variable] = str(root / folder)


@pytest.fixture(scope="session", autouse=True)
def no_files_left_behind(tmp_path_factory):
    """Fails the run if a test leaves an `ssm_jax_*` entry in the temporary directory.

    The session gets a temporary directory of its own (`tempfile` and, for the notebook
    kernels and commands the tests start, TMPDIR), so that what other processes on the machine
    write there is not mistaken for a leftover. pytest's own `tmp_path` folders stay where they
    were.
    """
    tmp_path_factory.getbasetemp()  # fixed before the temporary directory moves
    saved = tempfile.tempdir, os.environ.get("TMPDIR")
    private = Path(tempfile.mkdtemp(prefix="tests_tmp_"))
    tempfile.tempdir, os.environ["TMPDIR"] = str(private), str(private)
    try:
        yield
    finally:
        tempfile.tempdir = saved[0]
        if saved[1] is None:
            os.environ.pop("TMPDIR")
        else:
            os.environ["TMPDIR"] = saved[1]
    left = sorted(str(path) for path in private.glob("ssm_jax_*"))
    if left:
        pytest.fail(f"Tests left {len(left)} ssm_jax_* entries in the temporary directory: "
                    f"{left}. Remove them where they are made (TemporaryDirectory, tmp_path).")
    shutil.rmtree(private, ignore_errors=True)


@pytest.fixture
def read_only(monkeypatch):
    """`read_only(*folders)`: from then on `os.access` sees `folders` as not writable, as it
    would for anyone but root (root writes anywhere, so a chmod alone would not show it)."""

    def make(*folders):
        seen = {Path(f) for f in folders}
        access = os.access
        monkeypatch.setattr(os, "access", lambda path, mode, **kw: access(path, mode, **kw)
                            and not (Path(path) in seen and mode & os.W_OK))

    return make
