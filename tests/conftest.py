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

Measurement aids: ``QD_TESTS_CACHE_STATS=DIR`` (persistent-cache hits and compile time saved, per process),
``QD_TESTS_COMPILE_PROFILE=DIR`` (``[test id, event, function, seconds]`` for every trace, lowering and XLA
compile of the test processes, one JSON file per process; programs compiled in subprocesses, notebook kernels
included, are not seen).
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
    # at exit for the processes tests start; xdist workers skip atexit, pytest_sessionfinish writes theirs
    atexit.register(lambda: open(_stats_file, "w").write(json.dumps(_stats)))


_PROFILE_DIR = os.environ.get("QD_TESTS_COMPILE_PROFILE")
if _PROFILE_DIR:  # measurement aid: every trace, lowering and XLA compile, with its test, per process
    import json

    _records = []
    _current = {"test": "(collection)"}

    def _compile_duration(event, duration, **kw):
        if event.startswith("/jax/core/compile/") or event == "/jax/compilation_cache/compile_time_saved_sec":
            _records.append([_current["test"], event.rsplit("/", 1)[-1], kw.get("fun_name", ""), round(duration, 4)])

    jax.monitoring.register_event_duration_secs_listener(_compile_duration)

    def pytest_runtest_setup(item):
        _current["test"] = item.nodeid


def pytest_sessionfinish(session, exitstatus):
    if os.environ.get("QD_TESTS_CACHE_STATS"):
        with open(_stats_file, "w") as f:
            f.write(json.dumps(_stats))
    if _PROFILE_DIR:  # here, not atexit: xdist workers leave without running atexit handlers
        with open(os.path.join(_PROFILE_DIR, f"compiles-{os.getpid()}.json"), "w") as f:
            json.dump(_records, f)
    if OWNER:
        shutil.rmtree(CACHE_ROOT, ignore_errors=True)
