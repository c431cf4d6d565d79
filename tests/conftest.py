"""Test-session set-up, done when pytest imports this file (before any test module imports JAX's users):

- two JAX CPU devices in every test process (set before JAX computes anything), so that the tests of
  ``qd.parallel`` and of runs with ``devices > 1`` run on any machine, as the `qd` command sets them up;
- every cache in a temporary folder of the session (removed at the end): ``$QD_JAX_CACHE_DIR`` (JAX's
  persistent compilation cache, :mod:`qd.cache`) and ``$XDG_CACHE_HOME`` (where the default cache folder and
  other tools' caches fall back to), so that no test writes to the user's ``~/.cache``. Subprocesses that
  tests start inherit both.
"""

import os
import shutil
import tempfile

import jax

CACHE_ROOT = tempfile.mkdtemp(prefix="qd-tests-cache-")
os.environ["QD_JAX_CACHE_DIR"] = os.path.join(CACHE_ROOT, "qd-jax", "jax")
os.environ["XDG_CACHE_HOME"] = CACHE_ROOT

jax.config.update("jax_num_cpu_devices", 2)


def pytest_sessionfinish(session, exitstatus):
    shutil.rmtree(CACHE_ROOT, ignore_errors=True)
