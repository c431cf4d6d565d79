"""Brax throughput: qd-jax MAP-Elites on walker2d_uni, optionally side by side with QDax 0.5.0.

Settings (both libraries): ``walker2d_uni`` (feet-contact descriptor in [0, 1]^2, fitness = Brax's walker
reward summed over the episode, fixed initial state), Brax's ``spring`` physics backend (the fastest
here, see ``benchmarks/brax_backends.py``; QDax's ``environments.create`` takes the same ``backend``
argument, so both run it), episode length 100, MLP policy (64, 64) with ReLU and a ``tanh`` output,
LeCun-uniform kernels, batch 128 (the initial population is 128 random policies too), CVT archive of
1024 cells (k-means on 25,000 uniform samples), iso+line variation with iso_sigma 0.005 and
line_sigma 0.05 (the values of QDax's Brax examples), 30 iterations after the initial batch.

Devices: qd runs as ``qd run`` does on Brax tasks: one JAX CPU device per core
(``qd.parallel.use_cpu_cores``) and each batch's evaluation split over them (``MAPElites(devices="all")``;
``--qd-devices 1`` for one device). QDax runs as it ships, on one device; with ``--compare`` a third child
runs qd on one device too (``qd_one_device_*``), so the gain from splitting the batch is visible apart
from the rest.

Each iteration is one compiled call (qd-jax: ``MAPElites.run(..., chunk_size=1)``, the loop a user with a
progress callback runs, whose first call evaluates the initial batch with the same program; QDax:
``MAPElites.init``, then ``jax.jit(MAPElites.update)`` and its metrics fetched), so the time of every
iteration is seen from the host.

What is measured, for each library in its own fresh subprocess (``--library qd|qdax --json``):

- ``env_steps_per_s``: steady state, ``batch * episode_length * n / t`` over iterations 2..30 (after
  every compilation). Steps after an early termination count: both libraries compute them.
- ``first_iteration_s``: from the child's process start (``psutil``'s ``create_time``; interpreter start
  and imports included) to the end of the first iteration after the initial batch: CVT centroids, initial
  batch, and every compilation. JAX's persistent compilation cache is disabled in the children
  (``jax_enable_compilation_cache=False``, also ``JAX_ENABLE_COMPILATION_CACHE=false`` in their
  environment), so each child compiles everything from scratch, as on a first run. With ``--warm-cache``,
  two more qd children share a fresh temporary cache folder: the second one's time is
  ``qd_first_iteration_warm_cache_s``, what ``qd run`` users (whose cache is on by default) see from
  their second run of a configuration on.
- ``peak_rss_mb``: ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` of the child after the 30 iterations
  (before the evaluation-only timing below).
- ``overhead_fraction``: ``1 - t_evaluate / t_iteration``, where ``t_evaluate`` is the mean time of the
  library's jitted batch evaluation alone (128 policies, after compilation) and ``t_iteration`` the mean
  steady-state iteration time: the share of an iteration spent outside the rollouts (variation, archive
  insertion, metrics, dispatch, and for QDax storing the whole trajectories). Noisy: the difference of two
  times that each vary by 20% from run to run on a shared VM.
- ``qd_part_fraction`` (qd): the same share measured directly, ``t_qd / t_iteration``, where ``t_qd`` is the
  mean iteration time of the same loop (same emitter, filled archive, devices, one call per iteration)
  with random scores of the rollout's shapes in place of the rollout.

Usage: ``python benchmarks/brax_throughput.py [--compare] [--iterations 30] [--batch-size 128]``.
Prints one line per library and, last, one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

TASK, BASE_ENV, BACKEND = "walker2d_uni", "walker2d", "spring"
EPISODE_LENGTH, HIDDEN, NUM_CELLS, CVT_SAMPLES = 100, (64, 64), 1024, 25_000
ISO_SIGMA, LINE_SIGMA = 0.005, 0.05


def _since_process_start() -> float:
    import psutil

    return time.time() - psutil.Process().create_time()


def _peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # kilobytes on Linux


def _configure_cache(jax) -> None:
    """Disable JAX's persistent compilation cache, unless ``QD_BENCH_CACHE_DIR`` names one (warm runs)."""
    if os.environ.get("QD_BENCH_CACHE_DIR"):
        from qd.cache import enable_compilation_cache

        jax.config.update("jax_enable_compilation_cache", True)
        enable_compilation_cache(os.environ["QD_BENCH_CACHE_DIR"])
        return
    jax.config.update("jax_enable_compilation_cache", False)


def _timed_evaluations(evaluate, genotypes, key, repeats: int) -> float:
    """Mean seconds of one jitted batch evaluation (first call compiles and is not counted)."""
    import jax

    jax.block_until_ready(evaluate(genotypes, key))
    t = time.perf_counter()
    for i in range(repeats):
        out = evaluate(genotypes, jax.random.fold_in(key, i))
    jax.block_until_ready(out)
    return (time.perf_counter() - t) / repeats


def _qd_part_s(algo, state, compiler_options, iterations: int = 20) -> float:
    """Mean seconds of an iteration without the rollouts: the same loop (one compiled iteration per call,
    same devices and XLA options) on the filled archive, with random scores of the rollout's shapes in place
    of the rollout."""
    import jax

    from qd import Evaluation, MAPElites

    def stand_in(genotypes, key):
        n = jax.tree_util.tree_leaves(genotypes)[0].shape[0]  # batch / devices: each shard scores its part
        k_fit, k_desc = jax.random.split(key)
        return Evaluation(100.0 * jax.random.normal(k_fit, (n,)), jax.random.uniform(k_desc, (n, 2)))

    qd_only = MAPElites(algo.emitter, stand_in, compiler_options=compiler_options, devices=algo.population.devices)
    state, _ = qd_only.run(state, 2, chunk_size=1)  # compiles
    stamps = []
    qd_only.run(state, iterations, chunk_size=1, callback=lambda s, m: stamps.append(time.perf_counter()))
    return (stamps[-1] - stamps[0]) / (len(stamps) - 1)


def bench_qd(iterations: int, batch: int, seed: int, devices: str) -> dict:
    import jax

    from qd.parallel import use_cpu_cores

    if devices == "all":
        use_cpu_cores()  # one JAX CPU device per core, before JAX computes anything
    _configure_cache(jax)
    from emitters import IsoLineEmitter
    from qd import CVTArchive, MAPElites
    from qd.tasks.brax import make_task

    task = make_task(TASK, episode_length=EPISODE_LENGTH, hidden_sizes=HIDDEN, backend=BACKEND)
    _configure_cache(jax)
    k_init, k_run, k_eval = jax.random.split(jax.random.key(seed), 3)
    genotypes = task.initial_genotypes(k_init, batch)
    lower, upper = task.descriptor_bounds
    archive = CVTArchive.create(
        jax.tree_util.tree_map(lambda x: x[0], genotypes), NUM_CELLS, lower, upper, seed=seed,
        qd_offset=task.qd_offset, num_samples=CVT_SAMPLES,
    )
    emitter = IsoLineEmitter(batch_size=batch, iso_sigma=ISO_SIGMA, line_sigma=LINE_SIGMA)
    algo = MAPElites(emitter, task.evaluate, compiler_options=task.compiler_options,
                     devices=devices if devices == "all" else int(devices))
    state, _ = algo.init(archive, genotypes, k_run)

    stamps = []
    first = {}

    def callback(state, metrics):  # iteration 0 is the initial batch (evaluated by the loop program)
        if int(metrics["iteration"][-1]) >= 1:
            stamps.append(time.perf_counter())
        if int(metrics["iteration"][-1]) == 1:
            first["s"] = _since_process_start()

    state, metrics = algo.run(state, iterations, chunk_size=1, callback=callback)
    rss = _peak_rss_mb()
    t_iter = (stamps[-1] - stamps[0]) / (len(stamps) - 1)
    evaluate = jax.jit(algo.evaluate, compiler_options=task.compiler_options)  # sharded like the loop's
    t_eval = _timed_evaluations(evaluate, genotypes, k_eval, repeats=10)
    t_qd = _qd_part_s(algo, state, task.compiler_options)
    return {
        "library": "qd",
        "devices": algo.population.num_devices,
        "env_steps_per_s": batch * EPISODE_LENGTH / t_iter,
        "first_iteration_s": first["s"],
        "peak_rss_mb": rss,
        "iteration_s": t_iter,
        "evaluate_s": t_eval,
        "overhead_fraction": 1.0 - t_eval / t_iter,
        "qd_part_s": t_qd,
        "qd_part_fraction": t_qd / t_iter,
        "coverage": float(metrics["coverage"][-1]),
        "qd_score": float(metrics["qd_score"][-1]),
        "max_fitness": float(metrics["max_fitness"][-1]),
        "compilation_cache": bool(jax.config.jax_enable_compilation_cache),
    }


def bench_qdax(iterations: int, batch: int, seed: int) -> dict:
    import functools

    import jax
    import jax.numpy as jnp

    _configure_cache(jax)
    import qdax.tasks.brax.v2 as environments
    from qdax.core.containers.mapelites_repertoire import compute_cvt_centroids
    from qdax.core.emitters.mutation_operators import isoline_variation
    from qdax.core.emitters.standard_emitters import MixingEmitter
    from qdax.core.map_elites import MAPElites
    from qdax.core.neuroevolution.networks.networks import MLP
    from qdax.tasks.brax.v2.env_creators import create_brax_scoring_fn
    from qdax.utils.metrics import default_qd_metrics

    _configure_cache(jax)
    key = jax.random.key(seed)
    k_init, k_cvt, k_score, k_run, k_eval = jax.random.split(key, 5)
    # As QDax's Brax MAP-Elites example builds it (auto-reset on, deterministic initial state).
    env = environments.create(TASK, episode_length=EPISODE_LENGTH, backend=BACKEND)
    policy = MLP(layer_sizes=HIDDEN + (env.action_size,), kernel_init=jax.nn.initializers.lecun_uniform(),
                 final_activation=jnp.tanh)
    genotypes = jax.vmap(policy.init)(jax.random.split(k_init, batch), jnp.zeros((batch, env.observation_size)))
    scoring_fn = create_brax_scoring_fn(env, policy, environments.descriptor_extractor[TASK], k_score,
                                        episode_length=EPISODE_LENGTH, deterministic=True)
    centroids = compute_cvt_centroids(num_descriptors=env.descriptor_length, num_init_cvt_samples=CVT_SAMPLES,
                                      num_centroids=NUM_CELLS, minval=0.0, maxval=1.0, key=k_cvt)
    variation = functools.partial(isoline_variation, iso_sigma=ISO_SIGMA, line_sigma=LINE_SIGMA)
    emitter = MixingEmitter(mutation_fn=None, variation_fn=variation, variation_percentage=1.0, batch_size=batch)
    offset = environments.reward_offset[TASK] * EPISODE_LENGTH
    algo = MAPElites(scoring_fn, emitter, functools.partial(default_qd_metrics, qd_offset=offset))
    repertoire, emitter_state, _ = algo.init(genotypes, centroids, k_run)
    update = jax.jit(algo.update)

    stamps = []
    first = None
    for i in range(iterations):
        repertoire, emitter_state, metrics = update(repertoire, emitter_state, jax.random.fold_in(k_run, i))
        metrics = jax.device_get(metrics)
        stamps.append(time.perf_counter())
        if first is None:
            first = _since_process_start()
    rss = _peak_rss_mb()
    t_iter = (stamps[-1] - stamps[0]) / (len(stamps) - 1)
    t_eval = _timed_evaluations(scoring_fn, genotypes, k_eval, repeats=10)
    return {
        "library": "qdax",
        "env_steps_per_s": batch * EPISODE_LENGTH / t_iter,
        "first_iteration_s": first,
        "peak_rss_mb": rss,
        "iteration_s": t_iter,
        "evaluate_s": t_eval,
        "overhead_fraction": 1.0 - t_eval / t_iter,
        "coverage": float(metrics["coverage"]) / 100.0,  # QDax reports percent
        "qd_score": float(metrics["qd_score"]),
        "max_fitness": float(metrics["max_fitness"]),
        "compilation_cache": bool(jax.config.jax_enable_compilation_cache),
    }


def run_child(library: str, args, cache_dir: str = "", qd_devices: str = "") -> dict:
    """Run one library in a fresh interpreter; returns the JSON object it prints last.

    ``cache_dir``: a persistent compilation cache folder for the child (qd only); none by default.
    ``qd_devices``: qd's ``--qd-devices`` (default: the command line's)."""
    cmd = [sys.executable, os.path.abspath(__file__), "--library", library, "--json",
           "--iterations", str(args.iterations), "--qd-devices", qd_devices or args.qd_devices,
           "--batch-size", str(args.batch_size), "--seed", str(args.seed)]
    env = dict(os.environ, JAX_ENABLE_COMPILATION_CACHE="true" if cache_dir else "false",
               QD_BENCH_CACHE_DIR=cache_dir)
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if out.returncode != 0:
        sys.stderr.write(out.stderr)
        raise RuntimeError(f"{library} benchmark failed (exit {out.returncode})")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--compare", action="store_true", help="also run QDax 0.5.0 (in its own subprocess)")
    parser.add_argument("--iterations", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--warm-cache", action="store_true",
                        help="also time qd's first iteration with a filled persistent compilation cache")
    parser.add_argument("--qd-devices", default="all",
                        help="'all' (one JAX CPU device per core, the population split over them: what `qd run` "
                             "does on Brax tasks) or 1 (one device)")
    parser.add_argument("--library", choices=("qd", "qdax"), help="run one library in this process")
    parser.add_argument("--json", action="store_true", help="with --library: print only the JSON result")
    args = parser.parse_args()
    if args.iterations < 2:
        parser.error("--iterations must be at least 2 (the steady state excludes the first)")

    if args.library:
        if args.library == "qd":
            result = bench_qd(args.iterations, args.batch_size, args.seed, args.qd_devices)
        else:
            result = bench_qdax(args.iterations, args.batch_size, args.seed)
        print(json.dumps(result))
        return

    runs = [("qd", "qd", "")]
    if args.compare:
        runs.append(("qdax", "qdax", ""))
        if args.qd_devices != "1":  # qd as it runs on one device, for reference
            runs.append(("qd_one_device", "qd", "1"))
    results = {}
    for name, lib, devices in runs:
        r = results[name] = run_child(lib, args, qd_devices=devices)
        print(f"{name:13s} {r['env_steps_per_s']:>9,.0f} env steps/s  first iteration {r['first_iteration_s']:6.1f} s  "
              f"peak RSS {r['peak_rss_mb']:7.0f} MB  outside rollouts {r['overhead_fraction']:6.1%}"
              + (f" (direct: {r['qd_part_fraction']:.1%})  " if "qd_part_fraction" in r else "  ") +
              f"coverage {r['coverage']:.1%}  max fitness {r['max_fitness']:.1f}", flush=True)
    if args.warm_cache:  # what `qd run` users get from their second run on: the persistent cache filled
        import tempfile

        with tempfile.TemporaryDirectory() as cache_dir:
            run_child("qd", args, cache_dir)
            r = results["qd_warm"] = run_child("qd", args, cache_dir)
        print(f"qd, warm compilation cache: first iteration {r['first_iteration_s']:6.1f} s  "
              f"peak RSS {r['peak_rss_mb']:7.0f} MB", flush=True)

    import jax

    out = {"task": TASK, "backend": BACKEND, "episode_length": EPISODE_LENGTH, "batch_size": args.batch_size,
           "iterations": args.iterations, "num_cells": NUM_CELLS, "hidden_sizes": list(HIDDEN),
           "device": jax.devices()[0].platform, "cpu_count": os.cpu_count(),
           "compilation_cache": "disabled (warm: a filled temporary one)"}
    for lib in ("qd", "qdax"):
        r = results.get(lib)
        out[f"{lib}_env_steps_per_s"] = round(r["env_steps_per_s"], 1) if r else None
        out[f"{lib}_first_iteration_s"] = round(r["first_iteration_s"], 2) if r else None
        out[f"{lib}_peak_rss_mb"] = round(r["peak_rss_mb"], 1) if r else None
        out[f"{lib}_coverage"] = round(r["coverage"], 4) if r else None
    if "qd_one_device" in results:
        out["qd_one_device_env_steps_per_s"] = round(results["qd_one_device"]["env_steps_per_s"], 1)
        out["qd_one_device_first_iteration_s"] = round(results["qd_one_device"]["first_iteration_s"], 2)
    if "qd_warm" in results:
        out["qd_first_iteration_warm_cache_s"] = round(results["qd_warm"]["first_iteration_s"], 2)
    out["qd_qd_overhead_fraction"] = round(results["qd"]["overhead_fraction"], 4)
    out["qd_qd_part_fraction"] = round(results["qd"]["qd_part_fraction"], 4)
    out["qd_devices"] = results["qd"]["devices"]
    if "qdax" in results:
        out["qdax_overhead_fraction"] = round(results["qdax"]["overhead_fraction"], 4)
        out["qd_over_qdax_env_steps"] = round(out["qd_env_steps_per_s"] / out["qdax_env_steps_per_s"], 2)
        out["qd_over_qdax_first_iteration"] = round(out["qd_first_iteration_s"] / out["qdax_first_iteration_s"], 2)
        out["qd_over_qdax_peak_rss"] = round(out["qd_peak_rss_mb"] / out["qdax_peak_rss_mb"], 2)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
