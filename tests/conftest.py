"""Test-session set-up, done when pytest imports this file (before any test module imports JAX's users):

- two JAX CPU devices in every test process (set before JAX computes anything), so that the tests of
  ``qd.parallel`` and of runs with ``devices > 1`` run on any machine, as the `qd` command sets them up;
- every cache in one temporary folder of the session, shared by the pytest process and its xdist workers
  (created by the first of them, the controller, and removed by it at the end): ``$QD_JAX_CACHE_DIR`` (JAX's
  persistent compilation cache, :mod:`qd.cache`) and ``$XDG_CACHE_HOME`` (where the default cache folder and
  other tools' caches fall back to), so that no test writes to the user's ``~/.cache``. Subprocesses that
  tests start inherit both;
- JAX's persistent compilation cache on in every test process, and (through ``$JAX_COMPILATION_CACHE_DIR``)
  in every process they start (`qd` subprocesses, notebook kernels): a program that several tests, drivers
  or processes compile (most of the suite's time is XLA compilation) is compiled once per session.
  Set ``QD_TESTS_NO_COMPILATION_CACHE=1`` to run the tests without it.
"""

import os
import shutil
import tempfile

_SHARED = "QD_TESTS_CACHE_ROOT"  # set by the process that created the folder; inherited by xdist workers
OWNER = not os.environ.get(_SHARED)
if OWNER:
    os.environ[_SHARED] = tempfile.mkdtemp(prefix="qd-tests-cache-")
CACHE_ROOT = os.environ[_SHARED]
JAX_CACHE_DIR = os.path.join(CACHE_ROOT, "qd-jax", "jax")
os.environ["QD_JAX_CACHE_DIR"] = JAX_CACHE_DIR
os.environ["XDG_CACHE_HOME"] = CACHE_ROOT
COMPILATION_CACHE = not os.environ.get("QD_TESTS_NO_COMPILATION_CACHE")
MIN_COMPILE_TIME_S = 0.5  # qd.cache's default: smaller programs compile faster than they load
if COMPILATION_CACHE:
    os.environ["JAX_COMPILATION_CACHE_DIR"] = JAX_CACHE_DIR
    os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = str(MIN_COMPILE_TIME_S)
    os.environ["JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES"] = "0"

import jax  # noqa: E402

jax.config.update("jax_num_cpu_devices", 2)
if COMPILATION_CACHE:
    from qd.cache import enable_compilation_cache  # noqa: E402

    enable_compilation_cache(JAX_CACHE_DIR, min_compile_time_s=MIN_COMPILE_TIME_S)

if os.environ.get("QD_TESTS_CACHE_STATS"):  # measurement aid: hits and compile time saved, per process
    import atexit
    import json

    _stats = {"hits": 0, "saved_s": 0.0, "requests": 0}

    def _event(event, **kw):
        if event == "/jax/compilation_cache/cache_hits":
            _stats["hits"] += 1
        elif event == "/jax/compilation_cache/compile_requests_use_cache":
            _stats["requests"] += 1

    def _duration(event, duration, **kw):
        if event == "/jax/compilation_cache/compile_time_saved_sec":
            _stats["saved_s"] += duration

    jax.monitoring.register_event_listener(_event)
    jax.monitoring.register_event_duration_secs_listener(_duration)
    _stats_file = os.path.join(os.environ["QD_TESTS_CACHE_STATS"], f"stats-{os.getpid()}.json")
    atexit.register(lambda: open(_stats_file, "w").write(json.dumps(_stats)))


# The test files with the longest tests, longest first: run first, so that the two xdist workers do not end
# with one of them still in a minute-long test while the other has nothing left (files keep their tests
# together, in order, so that module fixtures are built once; the other files follow in collection order).
SLOW_FILES = ("test_notebooks.py", "test_aurora.py", "test_batch_invariance.py", "test_brax_cli.py",
              "test_brax_tasks.py", "test_taxons_cli.py", "test_ant_maze.py", "test_cma_family_driver.py",
              "test_cma_cli.py", "test_autoencoders.py", "test_cma_me.py", "test_stax.py", "test_replay.py",
              "test_bandit_scheduler.py", "test_parallel.py", "test_taxons.py", "test_driver.py")


def pytest_collection_modifyitems(session, config, items):
    rank = {name: i for i, name in enumerate(SLOW_FILES)}
    items.sort(key=lambda item: rank.get(item.path.name, len(SLOW_FILES)))  # stable: collection order within


def pytest_configure(config):
    # xdist's load scheduling hands each worker a first chunk of a quarter of its share of the tests, which it
    # must run itself: with the long files first, one worker would get all of them. One test at a time instead
    # (a worker keeps two queued), unless --maxschedchunk says otherwise.
    if getattr(config.option, "dist", "no") == "load" and getattr(config.option, "maxschedchunk", 0) is None:
        config.option.maxschedchunk = 1


def pytest_sessionfinish(session, exitstatus):
    if OWNER:
        shutil.rmtree(CACHE_ROOT, ignore_errors=True)
