"""Sphere linear-projection benchmark of the CMA-ME / CMA-MAE papers: qd-jax against pyribs 0.12.

Settings (Fontaine et al., GECCO 2020; Fontaine & Nikolaidis, GECCO 2023; both libraries): 100-D sphere
``sum (x - 2.048)^2`` normalised to ``[0, 100]`` (``qd.Sphere``), 2-D clipped-sum descriptor in
``[-256, 256]^2``, 100x100 grid, 15 emitters x 36 = 540 solutions per iteration, start at ``x0 = 0``,
no genotype bounds. Algorithms (the configurations of pyribs' ``examples/sphere.py``, which reproduce the
CMA-MAE paper's):

- ``map_elites``: Gaussian mutation, sigma 0.5, one emitter of 540;
- ``line_map_elites``: iso+line, iso_sigma 0.5, line_sigma 0.2, one emitter of 540;
- ``cma_me_imp``: CMA-ME improvement emitters (two-stage improvement ranking, "filter" selection, restart
  on no improvement), sigma0 0.5;
- ``cma_mae``: CMA-MAE, learning rate 0.01, threshold_min 0, improvement ranking, "mu" selection, basic
  restarts, sigma0 0.5; metrics from the result archive;
- ``me_map_elites``: Multi-Emitter MAP-Elites (Cully, GECCO 2021), pyribs' ``me_map_elites``: a UCB1 bandit
  (``BanditScheduler``, ``num_active=15``, ``reselect="terminated"``, zeta 0.05) over a pool of 60 emitters
  of batch 36 (so 15 x 36 = 540 per iteration): 15 CMA-ME emitters of each ranker ``obj``, ``2rd`` and
  ``2imp`` (pyribs' defaults: "filter" selection, restart on no improvement; sigma0 0.5) and 15 iso+line
  emitters (iso_sigma 0.01, line_sigma 0.1), in that pool order. (The example's older versions had 4 x 12
  members, 12 active, batch 50, 20,000 iterations; this is its current, 540-per-iteration form.)

qd-jax: the 15 emitters are one emitter (15 vmapped CMA-ES instances, or one batch of 540 mutations), but
for ``me_map_elites``, where each of the 60 pool members is its own emitter (one CMA-ES instance, or a batch
of 36) that ``emitters.BanditScheduler`` picks; its initial batch is 540 copies of ``x0`` (iteration 0),
then ``--iterations`` iterations. pyribs: 15 emitters (a pool of 60 for ``me_map_elites``) with ``x0 = 0``,
always the papers' full 10,000 iterations (``--ribs-seeds`` seeds).

Reported per algorithm: ``qd_score`` normalised as in the papers (sum of the elites' objectives over the
number of cells, so in ``[0, 100]``), ``coverage``, ``wall_s`` (median over seeds of a whole run, steady
state: each library first runs the configuration briefly, untimed, so that qd-jax's XLA programs and
pyribs' numba kernels are compiled; those one-off costs are ``compile_s`` and ``ribs_..._warmup_s``).
``OPENBLAS_NUM_THREADS=1`` for both libraries (set before NumPy / JAX load).

Measured on this project's shared 2-core CPU, one run of the whole benchmark (qd-jax 2 seeds, pyribs seed
0; QD-score / coverage / steady-state wall s): MAP-Elites 41.6 / 50.7% / 2.9 s vs pyribs 42.0 / 51.3% / 10.6
s; iso+line 49.3 / 60.7% / 3.3 s vs 49.1 / 60.4% / 11.9 s; CMA-ME 46.0 / 56.3% / 7.3 s vs 45.7 / 55.9% /
36.2 s; CMA-MAE 69.5 (69.2-69.8) / 90.5% / 9.0 s vs 62.8 / 80.5% / 99.7 s (11.0x; the CPU is shared and
walls move: an earlier full run gave 12.7 s vs 90.3 s, 7.1x, and a CMA-MAE-only run with 3 seeds 8.5 s vs
89.5 s, 10.5x); Multi-Emitter MAP-Elites 55.0 (54.0-56.0) / 67.7% / 31.3 s vs 55.3 / 68.1% / 19.5 s
(pyribs seed 1, another run: 50.9 / 61.6%). The paper's ordering holds: CMA-MAE well ahead, then the bandit,
iso+line ahead of Gaussian.

The CMA-MAE gap is pyribs' CMA-ES, not the CMA-MAE rules: pyribs 0.12's
``CMAEvolutionStrategy._calc_cov_update`` multiplies the rank-one term ``c1 p_c p_c^T`` by ``c1`` a second
time (so it almost vanishes at 100-D); with that term scaled once, as in Hansen's tutorial and our core,
pyribs' CMA-MAE reaches 68.5 / 89.0% (seed 0; no restart in either library in 10,000 iterations).

Multi-Emitter MAP-Elites is the one configuration where qd-jax is slower than pyribs (about 3 ms per
iteration, compile about 45 s): ``emitters.BanditScheduler`` runs each member configuration vmapped over
``min(15, 15)`` lanes, so 45 one-instance CMA-ES updates for the ~11 CMA members that run, where pyribs
updates only those (the three CMA-ME configurations differ only in static ranking rules; making those
dynamic would let the 45 members share one group of 15 lanes).

Usage: ``python benchmarks/sphere_lp.py [--iterations 10000] [--seeds 2] [--compare] [--ribs-seeds 1]
[--algorithms cma_mae,...]``. pyribs runs in a subprocess of the Python named by ``$RIBS_PYTHON`` (default:
this one), e.g. ``RIBS_PYTHON=/tmp/benchvenv/bin/python``, which needs only pyribs and NumPy. The last line
printed is one JSON object.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

DIM, RESOLUTION, INSTANCES, POP = 100, 100, 15, 36
BATCH = INSTANCES * POP
BOUND = 5.12 * DIM / 2
RIBS_ITERATIONS = int(os.environ.get("_SPHERE_LP_RIBS_ITERATIONS", 10_000))  # the papers; env only for a smoke test
ALGORITHMS = ("map_elites", "line_map_elites", "cma_me_imp", "cma_mae", "me_map_elites")


def bench_qd(name: str, iterations: int, seeds: int):
    import jax
    import jax.numpy as jnp

    from emitters import (
        BanditScheduler, CMAMAEEmitter, GaussianEmitter, ImprovementEmitter, IsoLineEmitter, OptimizingEmitter,
        RandomDirectionEmitter,
    )
    from qd import GridArchive, MAPElites, Sphere
    from qd.algorithms import CMAMAE
    from qd.archives import ThresholdGridArchive

    task = Sphere(DIM)
    grid = lambda: GridArchive.create(jnp.zeros(DIM), RESOLUTION, (-BOUND, -BOUND), (BOUND, BOUND))
    if name == "cma_mae":
        algo = CMAMAE(CMAMAEEmitter(genotype_dim=DIM, num_instances=INSTANCES, population=POP, sigma0=0.5), task.evaluate)
        setup = lambda: (ThresholdGridArchive.create(
            jnp.zeros(DIM), RESOLUTION, (-BOUND, -BOUND), (BOUND, BOUND), learning_rate=0.01, threshold_min=0.0
        ), grid())
    else:
        # me_map_elites: 60 pool members of one CMA-ES instance (or one batch of 36) each; members of one
        # configuration compare equal, so the scheduler traces 4 configurations, each vmapped over its lanes.
        one = dict(genotype_dim=DIM, num_instances=1, population=POP, sigma0=0.5)
        pool = lambda: (
            [OptimizingEmitter(**one, selection_rule="filter", restart_rule="no_improvement")] * INSTANCES
            + [RandomDirectionEmitter(**one)] * INSTANCES
            + [ImprovementEmitter(**one)] * INSTANCES
            + [IsoLineEmitter(batch_size=POP, iso_sigma=0.01, line_sigma=0.1)] * INSTANCES
        )
        emitter = {
            "me_map_elites": lambda: BanditScheduler.create(*pool(), num_active=INSTANCES, reselect="terminated"),
            "map_elites": lambda: GaussianEmitter(batch_size=BATCH, sigma=0.5),
            "line_map_elites": lambda: IsoLineEmitter(batch_size=BATCH, iso_sigma=0.5, line_sigma=0.2),
            "cma_me_imp": lambda: ImprovementEmitter(genotype_dim=DIM, num_instances=INSTANCES, population=POP, sigma0=0.5),
        }[name]()
        algo = MAPElites(emitter, task.evaluate)
        setup = lambda: (grid(),)
    chunk = min(iterations, 1000)

    def run(seed, n):
        key = jax.random.key(seed)
        t = time.perf_counter()
        state, _ = algo.init(*setup(), task.initial_genotypes(key, BATCH), key)
        state, metrics = algo.run(state, n, chunk_size=chunk)
        jax.block_until_ready(state)
        return metrics, time.perf_counter() - t

    # Warm-up, untimed: one chunk compiles every program the runs use (pyribs gets a warm-up too).
    _, warmup = run(10_000, chunk)
    runs = []
    for seed in range(seeds):
        metrics, wall = run(seed, iterations)
        runs.append(dict(qd_score=float(metrics["qd_score"][-1]) / RESOLUTION**2, coverage=float(metrics["coverage"][-1]),
                         wall_s=wall, warmup_s=warmup))
    return runs


def bench_ribs(name: str, seeds: int):
    from ribs.archives import GridArchive
    from ribs.emitters import EvolutionStrategyEmitter, GaussianEmitter, IsoLineEmitter
    from ribs.schedulers import BanditScheduler, Scheduler

    def sphere(x):
        worst = (-5.12 - 2.048) ** 2 * DIM
        raw = np.sum((x - 2.048) ** 2, axis=1)
        inside = np.abs(x) <= 5.12
        clipped = np.where(inside, x, 5.12 / np.where(inside, 1.0, x))
        desc = np.stack([clipped[:, : DIM // 2].sum(1), clipped[:, DIM // 2 :].sum(1)], axis=1)
        return 100.0 * (raw - worst) / (0.0 - worst), desc

    def scheduler_of(seed):
        kw = dict(solution_dim=DIM, dims=(RESOLUTION, RESOLUTION), ranges=[(-BOUND, BOUND)] * 2, seed=seed)
        result_archive = None
        if name == "cma_mae":
            archive = GridArchive(**kw, learning_rate=0.01, threshold_min=0.0)
            result_archive = GridArchive(**kw)
        else:
            archive = GridArchive(**kw)
        x0 = np.zeros(DIM)
        make = {
            "map_elites": lambda s: GaussianEmitter(archive, sigma=0.5, x0=x0, batch_size=BATCH, seed=s),
            "line_map_elites": lambda s: IsoLineEmitter(archive, iso_sigma=0.5, line_sigma=0.2, x0=x0, batch_size=BATCH, seed=s),
            "cma_me_imp": lambda s: EvolutionStrategyEmitter(
                archive, x0=x0, sigma0=0.5, ranker="2imp", selection_rule="filter", restart_rule="no_improvement",
                batch_size=POP, seed=s),
            "cma_mae": lambda s: EvolutionStrategyEmitter(
                archive, x0=x0, sigma0=0.5, ranker="imp", selection_rule="mu", restart_rule="basic",
                batch_size=POP, seed=s),
        }.get(name)
        if name == "me_map_elites":  # pyribs' examples/sphere.py me_map_elites: a pool of 4 x 15, 15 active
            es = lambda ranker: lambda s: EvolutionStrategyEmitter(
                archive, x0=x0, sigma0=0.5, ranker=ranker, batch_size=POP, seed=s)
            makers = [es("obj"), es("2rd"), es("2imp"),
                      lambda s: IsoLineEmitter(archive, iso_sigma=0.01, line_sigma=0.1, x0=x0, batch_size=POP, seed=s)]
            pool = [m(seed * 1000 + j * INSTANCES + i) for j, m in enumerate(makers) for i in range(INSTANCES)]
            scheduler = BanditScheduler(archive, pool, num_active=INSTANCES, reselect="terminated")
        else:
            count = 1 if name in ("map_elites", "line_map_elites") else INSTANCES
            emitters = [make(seed * 1000 + i) for i in range(count)]
            scheduler = Scheduler(archive, emitters, result_archive=result_archive)
        return scheduler

    def iterate(scheduler, iterations):
        for _ in range(iterations):
            sols = scheduler.ask()
            objective, measures = sphere(sols)
            scheduler.tell(objective, measures)

    # Warm-up, untimed: pyribs compiles its archives' numba kernels on first use (~6 s here), as qd-jax
    # compiles its program; both walls are steady state, the one-off cost is reported apart.
    t = time.perf_counter()
    iterate(scheduler_of(10_000), 20)
    warmup = time.perf_counter() - t
    runs = []
    for seed in range(seeds):
        scheduler = scheduler_of(seed)
        t = time.perf_counter()
        iterate(scheduler, RIBS_ITERATIONS)
        wall = time.perf_counter() - t
        stats = scheduler.result_archive.stats
        runs.append(dict(qd_score=float(stats.qd_score) / RESOLUTION**2, coverage=float(stats.coverage), wall_s=wall,
                         warmup_s=warmup))
    return runs


def ribs_subprocess(name: str, seeds: int):
    """``bench_ribs`` in a subprocess of ``$RIBS_PYTHON``; raises ``RuntimeError`` with its stderr if it fails."""
    python = os.environ.get("RIBS_PYTHON", sys.executable)
    cmd = [python, os.path.abspath(__file__), "--ribs-only", name, "--ribs-seeds", str(seeds)]
    env = dict(os.environ, OPENBLAS_NUM_THREADS=os.environ["OPENBLAS_NUM_THREADS"])
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"pyribs run failed ({' '.join(cmd)}):\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=RIBS_ITERATIONS, help="qd-jax iterations (after the initial batch)")
    parser.add_argument("--seeds", type=int, default=2, help="qd-jax seeds per algorithm")
    parser.add_argument("--compare", action="store_true", help="also run pyribs 0.12 (10,000 iterations)")
    parser.add_argument("--ribs-seeds", type=int, default=1, help="pyribs seeds per algorithm")
    parser.add_argument("--algorithms", default=",".join(ALGORITHMS))
    parser.add_argument("--ribs-only", choices=ALGORITHMS, help=argparse.SUPPRESS)  # the pyribs subprocess
    args = parser.parse_args()
    if args.ribs_only:
        print(json.dumps(bench_ribs(args.ribs_only, args.ribs_seeds)))
        return
    names = [n for n in args.algorithms.split(",") if n]
    unknown = set(names) - set(ALGORITHMS)
    if unknown:
        parser.error(f"unknown algorithms {sorted(unknown)}; choose from {ALGORITHMS}")

    out = {"iterations": args.iterations, "seeds": args.seeds, "ribs_iterations": RIBS_ITERATIONS if args.compare else None,
           "ribs_seeds": args.ribs_seeds if args.compare else None, "openblas_num_threads": os.environ["OPENBLAS_NUM_THREADS"]}
    for name in names:
        runs = bench_qd(name, args.iterations, args.seeds)
        walls = [r["wall_s"] for r in runs]
        out[f"{name}_qd_score"] = round(float(np.mean([r["qd_score"] for r in runs])), 3)
        out[f"{name}_qd_score_min"] = round(float(np.min([r["qd_score"] for r in runs])), 3)
        out[f"{name}_qd_score_max"] = round(float(np.max([r["qd_score"] for r in runs])), 3)
        out[f"{name}_coverage"] = round(float(np.mean([r["coverage"] for r in runs])), 4)
        out[f"{name}_wall_s"] = round(float(np.median(walls)), 2)
        steady = out[f"{name}_wall_s"] * min(args.iterations, 1000) / args.iterations  # the warm-up's share of it
        out[f"{name}_compile_s"] = round(max(0.0, runs[0]["warmup_s"] - steady), 2)
        print(f"qd   {name:16s} qd_score {out[f'{name}_qd_score']:7.3f}  coverage {out[f'{name}_coverage']:.2%}  "
              f"wall {out[f'{name}_wall_s']:.1f} s", flush=True)
        if args.compare:
            runs = ribs_subprocess(name, args.ribs_seeds)
            out[f"ribs_{name}_qd_score"] = round(float(np.mean([r["qd_score"] for r in runs])), 3)
            out[f"ribs_{name}_qd_score_min"] = round(float(np.min([r["qd_score"] for r in runs])), 3)
            out[f"ribs_{name}_qd_score_max"] = round(float(np.max([r["qd_score"] for r in runs])), 3)
            out[f"ribs_{name}_coverage"] = round(float(np.mean([r["coverage"] for r in runs])), 4)
            out[f"ribs_{name}_wall_s"] = round(float(np.median([r["wall_s"] for r in runs])), 2)
            out[f"ribs_{name}_warmup_s"] = round(float(runs[0]["warmup_s"]), 2)
            out[f"{name}_speedup"] = round(out[f"ribs_{name}_wall_s"] / out[f"{name}_wall_s"], 2)
            print(f"ribs {name:16s} qd_score {out[f'ribs_{name}_qd_score']:7.3f}  coverage "
                  f"{out[f'ribs_{name}_coverage']:.2%}  wall {out[f'ribs_{name}_wall_s']:.1f} s", flush=True)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
