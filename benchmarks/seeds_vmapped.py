"""Seeds vmapped: 8 seeds of one configuration as one vmapped program vs 8 runs one after another.

Two workloads, each built by the ``qd run`` path (``qd.config.resolve_config`` then ``qd.runner.build_job``;
the job's ``driver`` and ``init_args`` are what ``qd run`` runs, and what ``qd bench`` vmaps):

- ``map_elites_arm``: ``qd run --task arm --batch-size 128`` (MAP-Elites, 100-joint arm, 100x100 grid,
  iso+line 0.005 / 0.05, lazy initial batch of 128);
- ``ns_curling``: ``qd run --algorithm ns --task curling`` (novelty search, population 100 x 2 offspring =
  200 evaluations per generation, sigma 0.05, exploration metrics over the 50x50 ground truth).

Seed ``s`` is the job of the config with ``seed: s`` started from ``PRNGKey(s)``, as ``qd run --seed s``
(novelty search's archive takes the seed in its setup). Every mode runs the same ``iterations`` per seed in
compiled chunks of the config's ``chunk_size`` (``Driver.run`` / ``Driver.run_seeds``: the lazy initial batch
a chunk of its own, as ``qd run``); the process exposes one JAX CPU device per core as the ``qd`` command does
(:func:`qd.parallel.use_cpu_cores`).

- sequential: the 8 seeds one after another, each ``driver.init(*init_args)`` then ``driver.run``, blocking on
  the final state; one driver for all 8 (one set of compiled programs), one device;
- vmapped (``vmapped_s``, what ``qd bench`` does): ``driver.init_seeds`` of the 8 stacked ``init_args``, then
  ``driver.run_seeds`` (one program), one device;
- vmapped and split (``vmapped_split_s``, ``qd bench`` with ``split_seeds: true``): the same with the seed
  axis split over the CPU devices (:func:`qd.bench.execute.seed_sharding`).

Timings are steady state: both modes first run a warm-up of the same chunk lengths (compiling every program
the timed run uses), then the timed run; compilation is excluded from both and reported separately
(``compile_s``: the warm-up's wall time minus its iterations' steady-state share, so an estimate). Each seed's
final metrics in the vmapped run are compared with its sequential run's (``match``: every final metric equal
to float32 rounding, ``qd_score_equal``: the final QD scores bitwise equal).

Findings (jax 0.10.2, XLA:CPU, 2 cores shared with other jobs, load average 4-5, so timings vary by up to
2x between runs): the 3x target is not met. Last full run: MAP-Elites / arm 1.18x vmapped (1.30x split over
the 2 devices), novelty search / curling 1.04x (0.61x split); every seed bitwise equal to its sequential run.
Neither workload's iteration is dominated by fixed per-iteration overhead that vmapping could amortise:

- MAP-Elites / arm, batch 128 (about 0.45-0.6 ms per iteration): per-candidate work. The threefry random
  numbers alone (a (128, 100) uniform) cost about 0.16 ms, plus the arm's cos/sin over 128 x 100 joints and the
  gathers / scatters of 100-float genotypes. One seed at batch 1024 takes about 2.25 ms per iteration against
  0.51 ms at batch 128, so even ideal batching of the 8 seeds gives under 2x on this machine.
- Novelty search / curling (about 20-50 ms per generation): the k-nearest-neighbour novelty of the 300
  parents and offspring against the 16,384-slot novelty archive (``qd.novelty.squared_distances``, a
  (300, 16384) distance matrix, then ``lax.top_k``, k 15) is about 60% of it and the 500-step curling rollout
  most of the rest; both scale linearly with the seeds. Distances by matrix product became, under ``vmap``, a
  batched ``dot_general`` that XLA:CPU ran about 70x slower than one seed's (and that rounded differently, so
  the seeds parted from their sequential runs after some tens of generations): for descriptors of up to 8
  dimensions they are now summed coordinate by coordinate (exact, elementwise under ``vmap``), which took the
  vmapped run from 0.6-0.86x to about 1x and made it bitwise equal to the sequential one.

Usage: ``python benchmarks/seeds_vmapped.py [--quick] [--iterations N] [--seeds 8] [--only map_elites_arm]``.
The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import jax

from qd.parallel import use_cpu_cores

use_cpu_cores()  # as the `qd` command: one JAX CPU device per core (before JAX computes anything)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from qd.config import resolve_config  # noqa: E402
from qd.runner import build_job  # noqa: E402

# name: (qd run options, iterations per seed at full size, with --quick)
WORKLOADS = {
    "map_elites_arm": (dict(task="arm", batch_size=128), 3000, 300),
    "ns_curling": (dict(algorithm="ns", task="curling"), 80, 10),
}


def jobs_of(options, seeds):
    """The ``qd run`` job of each seed, with one device."""
    return [build_job(resolve_config({**options, "devices": 1, "seed": s})) for s in range(seeds)]


def stack(trees):
    return jax.tree_util.tree_map(lambda *xs: jnp.stack([jnp.asarray(x) for x in xs]), *trees)


def sequential(jobs, iterations, chunk):
    """The seeds one after another with the first job's driver: (final states, metrics per seed)."""
    driver, out = jobs[0].driver, []
    for s, job in enumerate(jobs):
        state, _ = driver.init(*job.init_args(jax.random.PRNGKey(s)))
        state, metrics = driver.run(state, iterations, chunk_size=chunk)
        jax.block_until_ready(state)
        out.append((state, metrics))
    return out


def vmapped(jobs, iterations, chunk, split=False):
    """The seeds as one program: (final states (S, ...), metrics (S, T)); ``split``: the seed axis split over
    the CPU devices (one per core), as ``qd bench`` does with ``split_seeds`` (:func:`qd.bench.execute.seed_sharding`)."""
    from qd.bench.execute import seed_sharding

    driver = jobs[0].driver
    *setup, keys = stack([job.init_args(jax.random.PRNGKey(s)) for s, job in enumerate(jobs)])
    states, _ = driver.init_seeds(*setup, keys, seed_axes=(0,) * len(setup))
    sharding = seed_sharding(len(jobs)) if split else None
    if sharding is not None:
        states = jax.device_put(states, sharding)
    states, metrics = driver.run_seeds(states, iterations, chunk_size=chunk)
    jax.block_until_ready(states)
    return states, metrics


def timed(fn, *args):
    t = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - t


def warmup_iterations(iterations, chunk):
    """Fewest iterations whose chunks have every length the timed run compiles (first, full, remainder)."""
    return iterations if iterations <= chunk else chunk + iterations % chunk


def compare(seq, vm):
    """Per seed: every final metric of the vmapped run vs the sequential run's."""
    _, vm_metrics = vm
    match, qd_equal, worst = True, True, 0.0
    for s, (_, m) in enumerate(seq):
        for k, v in m.items():
            a, b = np.asarray(vm_metrics[k][s, -1], np.float64), np.asarray(v[-1], np.float64)
            if not np.allclose(a, b, rtol=1e-5, atol=1e-6):
                match = False
            if k == "qd_score":
                qd_equal &= bool(a == b)
                worst = max(worst, float(abs(a - b)))
    scores = [float(m["qd_score"][-1]) for _, m in seq]
    # The first loop iteration where some seed's qd_score curve departs from its sequential run's (None: never).
    apart = [np.flatnonzero(~np.isclose(vm_metrics["qd_score"][s], m["qd_score"], rtol=1e-5, atol=1e-6))
             for s, (_, m) in enumerate(seq)]
    first = min((int(a[0]) for a in apart if a.size), default=None)
    return match, qd_equal, worst, scores, first


def bench(name, options, iterations, seeds):
    jobs = jobs_of(options, seeds)
    config = jobs[0].config
    chunk = int(config["chunk_size"])
    warm = warmup_iterations(iterations, chunk)
    # Warm-up: the same programs as the timed runs (one seed for the sequential mode, all seeds vmapped).
    _, seq_warm = timed(sequential, jobs[:1], warm, chunk)
    _, vm_warm = timed(vmapped, jobs, warm, chunk)
    timed(vmapped, jobs, warm, chunk, True)
    seq, seq_s = timed(sequential, jobs, iterations, chunk)
    vm, vm_s = timed(vmapped, jobs, iterations, chunk)
    _, split_s = timed(vmapped, jobs, iterations, chunk, True)
    match, qd_equal, worst, scores, first = compare(seq, vm)
    batches = len(seq[0][1]["iteration"])  # loop batches per seed: + 1 for a lazy initial batch
    evaluations = int(seq[0][1]["num_evaluations"][-1])
    result = {
        "vmapped_s": round(vm_s, 3),
        "sequential_s": round(seq_s, 3),
        "speedup": round(seq_s / vm_s, 2),
        "vmapped_split_s": round(split_s, 3),
        "speedup_split": round(seq_s / split_s, 2),
        "iterations": iterations,
        "batch_size": int(config["batch_size"]),
        "chunk_size": chunk,
        "evaluations_per_seed": evaluations,
        "sequential_ms_per_iteration": round(1e3 * seq_s / (seeds * batches), 3),
        "vmapped_ms_per_iteration": round(1e3 * vm_s / batches, 3),
        "compile_sequential_s": round(max(0.0, seq_warm - seq_s / seeds * warm / iterations), 2),
        "compile_vmapped_s": round(max(0.0, vm_warm - vm_s * warm / iterations), 2),
        "match": match,
        "qd_score_equal": qd_equal,
        "qd_score_max_abs_diff": worst,
        "first_divergent_iteration": first,
        "qd_score_mean": round(float(np.mean(scores)), 3),
    }
    print(f"{name:15s} {seeds} seeds x {iterations} iterations (batch {result['batch_size']}, "
          f"{evaluations} evaluations per seed): sequential {seq_s:.2f} s, vmapped {vm_s:.2f} s, "
          f"speedup {result['speedup']:.2f}x (split over the devices {split_s:.2f} s, {result['speedup_split']:.2f}x; steady state, compile excluded: sequential "
          f"{result['compile_sequential_s']:.1f} s, vmapped {result['compile_vmapped_s']:.1f} s); "
          f"final metrics match: {match} (qd_score bitwise equal: {qd_equal}, mean {result['qd_score_mean']:.1f}"
          + ("" if first is None else f"; curves part at loop iteration {first}") + ")",
          flush=True)
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a tenth of the iterations (a smoke run)")
    parser.add_argument("--iterations", type=int, default=None, help="iterations per seed for every workload")
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--only", choices=sorted(WORKLOADS), action="append", help="run only these workloads")
    args = parser.parse_args()

    out = {"benchmark": "seeds_vmapped", "seeds": args.seeds, "quick": args.quick,
           "devices": f"sequential and vmapped: 1; vmapped_split: seeds split over {len(jax.devices())}",
           "platform": jax.devices()[0].platform, "cpu_count": os.cpu_count(),
           "steady_state": "compile excluded from both modes, reported as compile_*_s"}
    for name, (options, full, quick) in WORKLOADS.items():
        if args.only and name not in args.only:
            continue
        iterations = args.iterations or (quick if args.quick else full)
        out[name] = bench(name, options, iterations, args.seeds)
    out["load"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(out))


if __name__ == "__main__":
    main()
