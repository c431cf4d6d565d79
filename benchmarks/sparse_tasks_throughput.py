"""Throughput of the sparse-reward tasks, and novelty search vs random search on curling.

For each task: evaluations per second of one jitted ``task.evaluate`` call at population 200 (one novelty
search generation) and 4096 (compile excluded; the **median** of ``--repeats`` timed calls, or of as many
as fit in a minute, at least one; the best one reported beside it). ant_maze runs 250-step episodes (the
command line's default; SERENE's are 3000). Reference: the original Python environments take about 28.5 ms per curling episode and
34 ms per redundant-arm episode on one core (``docs``: ../shared/design/sparse_reward_qd.md, section 5), i.e.
35 and 29 evaluations/s; the target here is 200x that (7,018 and 5,882 evaluations/s) on a 2-core CPU. The
machine's load average (``os.getloadavg``) before and after the measurements is reported too: other
processes on the same cores lower the numbers.

Then (unless ``--skip-search``) novelty search and random search on curling with the same budget
(``--budget`` evaluations, 100k by default, 200 per generation), reporting the ground-truth coverage on the
50x50 grid, uniformity and reward areas found.

The last line printed is one JSON object: ``<task>_evals_per_s`` (population 4096, median),
``<task>_evals_per_s_200`` (population 200, median), the same with ``_best``, the speed-ups over the original
(``<task>_speedup_vs_original`` and ``..._200``), the load averages, and the search results.

    python benchmarks/sparse_tasks_throughput.py [--repeats 7] [--tasks redundant_arm curling ...]
        [--budget 100000] [--skip-search]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import jax
import jax.numpy as jnp
import numpy as np

from qd import GridArchive, UnstructuredArchive
from qd.algorithms import NoveltySearch, RandomSearch
from qd.tasks.sparse import AntMaze, Curling, HardMaze, Point2D, RedundantArm

ORIGINAL_MS = {"curling": 28.5, "redundant_arm": 34.0}
TASKS = {
    "curling": Curling,
    "redundant_arm": RedundantArm,
    "hard_maze": HardMaze,
    "point2d": Point2D,
    "ant_maze": lambda: AntMaze(num_steps=250),  # the command line's default episode (SERENE's: 3000)
}


def _load():
    """1-, 5- and 15-minute load averages (``uptime``), or None where the OS does not say."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:  # pragma: no cover - not on Linux/macOS
        return None


def throughput(task, batch, repeats, max_seconds=60.0):
    """``(median, best)`` evaluations/s of ``repeats`` timed calls (after one compiling call); fewer (at least
    one) when the timed calls pass ``max_seconds`` (ant_maze at 4096: about 2 minutes a call)."""
    evaluate = jax.jit(task.evaluate, compiler_options=getattr(task, "compiler_options", None))
    genotypes = task.initial_genotypes(jax.random.key(0), batch)
    jax.block_until_ready(evaluate(genotypes, None).fitnesses)  # compile
    times = []
    while len(times) < repeats and sum(times) < max_seconds:
        t = time.perf_counter()
        jax.block_until_ready(evaluate(genotypes, None).fitnesses)
        times.append(time.perf_counter() - t)
    return batch / float(np.median(times)), batch / min(times)


def search(budget, seed):
    task = Curling()
    generations = (budget - 100) // 200
    k1, k2 = jax.random.split(jax.random.key(seed))
    archive = UnstructuredArchive.create(jnp.zeros(task.num_params), 5 * generations + 5, 2,
                                         lower=task.descriptor_bounds[0], upper=task.descriptor_bounds[1],
                                         policy="random", num_per_batch=5, seed=seed)
    ns = NoveltySearch(task.evaluate, task.descriptor_bounds, task.num_reward_areas)
    t = time.perf_counter()
    state, _ = ns.init(archive, task.initial_genotypes(k1, 100), k2)
    state, m = ns.run(state, generations, chunk_size=100)
    ns_time = time.perf_counter() - t
    grid = GridArchive.create(jnp.zeros(task.num_params), 50, *task.descriptor_bounds)
    rs = RandomSearch(task.evaluate, task.initial_genotypes, 200, task.descriptor_bounds, task.num_reward_areas)
    t = time.perf_counter()
    rstate, _ = rs.init(grid, k2)
    rstate, r = rs.run(rstate, (budget - 200) // 200, chunk_size=100)
    rs_time = time.perf_counter() - t
    at = lambda metrics, n: float(metrics["gt_coverage"][int(np.searchsorted(metrics["num_evaluations"], n))])
    checkpoints = [n for n in (10_000, 20_000, 50_000) if n < budget]
    return {
        "coverage_at_budget": {str(n): {"ns": at(m, n), "random": at(r, n)} for n in checkpoints},
        "search_budget": int(m["num_evaluations"][-1]),
        "ns_gt_coverage": float(m["gt_coverage"][-1]),
        "ns_uniformity": float(m["uniformity"][-1]),
        "ns_reward_areas_found": int(m["reward_areas_found"][-1]),
        "ns_best_reward_per_area": [float(m[f"best_reward_area_{i}"][-1]) for i in range(task.num_reward_areas)],
        "ns_seconds": round(ns_time, 1),
        "random_budget": int(r["num_evaluations"][-1]),
        "random_gt_coverage": float(r["gt_coverage"][-1]),
        "random_uniformity": float(r["uniformity"][-1]),
        "random_reward_areas_found": int(r["reward_areas_found"][-1]),
        "random_seconds": round(rs_time, 1),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--budget", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=list(TASKS))
    parser.add_argument("--skip-search", action="store_true")
    args = parser.parse_args()
    result = {"device": jax.devices()[0].device_kind, "cpu": platform.processor() or platform.machine(),
              "cpu_count": os.cpu_count(), "repeats": args.repeats, "load_average_before": _load()}
    for name in args.tasks:
        task = TASKS[name]()
        for batch in (200, 4096):
            median, best = throughput(task, batch, args.repeats)
            suffix = "" if batch == 4096 else "_200"
            result[f"{name}_evals_per_s{suffix}"] = round(median, 1)
            result[f"{name}_evals_per_s{suffix}_best"] = round(best, 1)
            print(f"{name:14s} population {batch:5d}: {median:10.1f} evaluations/s (median; best {best:.1f})",
                  flush=True)
            if name in ORIGINAL_MS:
                speedup = median * ORIGINAL_MS[name] / 1000.0
                result[f"{name}_speedup_vs_original{suffix}"] = round(speedup, 1)
                print(f"{name:14s} speed-up over the original ({ORIGINAL_MS[name]} ms/episode): {speedup:.0f}x "
                      f"(target 200x = {200_000 / ORIGINAL_MS[name]:.0f} evaluations/s)", flush=True)
    result["load_average_after"] = _load()
    if not args.skip_search:
        result.update(search(args.budget, args.seed))
        print(f"curling, {result['search_budget']} evaluations: NS ground-truth coverage "
              f"{result['ns_gt_coverage']:.3f} vs random {result['random_gt_coverage']:.3f}", flush=True)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
