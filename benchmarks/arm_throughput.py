"""Arm throughput: qd-jax MAP-Elites vs QDax 0.5.0 and pyribs 0.12, same settings, same run.

Settings (all three libraries): 100-joint planar arm (QDax's definition: fitness ``-std(g)``, descriptor
the end-effector position in [0, 1]^2), 100x100 grid, iso+line variation (iso_sigma 0.005, line_sigma
0.05, genotypes clipped to [0, 1]), batch 1024, 1024 uniform random initial genotypes, 200 iterations.

Throughput counts the 200 iterations after the initial batch, after compilation (reported separately);
qd-jax evaluates its initial batch inside the same loop program (iteration 0), so its timed loop runs 201
batches and counts 201 x 1024 evaluations.
pyribs evaluates the same arm in NumPy.

Usage: ``python benchmarks/arm_throughput.py [--compare] [--seeds 3] [--iterations 200] [--batch-size 1024]``.
Coverage after 200 iterations varies by a few points between seeds (QDax: 55-63%), so compare
coverage with ``--seeds 3`` or more.
The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import time

import jax
import jax.numpy as jnp
import numpy as np

JOINTS, RESOLUTION, ISO_SIGMA, LINE_SIGMA = 100, 100, 0.005, 0.05


def bench_qd(iterations: int, batch: int, seed: int):
    from emitters import IsoLineEmitter
    from qd import Arm, GridArchive, MAPElites

    task = Arm(JOINTS)
    archive = GridArchive.create(jnp.zeros(JOINTS), RESOLUTION, (0, 0), (1, 1), qd_offset=task.qd_offset)
    emitter = IsoLineEmitter(batch_size=batch, iso_sigma=ISO_SIGMA, line_sigma=LINE_SIGMA, clip=(0.0, 1.0))
    algo = MAPElites(emitter, task.evaluate)
    key = jax.random.key(seed)

    def fresh():
        return algo.init(archive, task.initial_genotypes(jax.random.fold_in(key, 1), batch), key)[0]

    # The initial batch waits in the state and is iteration 0 of the loop program (the same work as any
    # iteration), so one loop covers 1 + iterations batches and is timed as such.
    batches = iterations + 1
    t = time.perf_counter()
    state, _ = algo.scan(fresh(), batches)
    jax.block_until_ready(state)
    compile_and_run = time.perf_counter() - t
    state = fresh()
    jax.block_until_ready(state)
    t = time.perf_counter()
    state, metrics = algo.scan(state, batches)
    jax.block_until_ready(state)
    elapsed = time.perf_counter() - t
    return {
        "evals_per_s": batches * batch / elapsed,
        "coverage": float(metrics["coverage"][-1]),
        "qd_score": float(metrics["qd_score"][-1]),
        "compile_s": compile_and_run - elapsed,
    }


def bench_qdax(iterations: int, batch: int, seed: int):
    import functools

    from qdax.core.containers.mapelites_repertoire import compute_euclidean_centroids
    from qdax.core.emitters.mutation_operators import isoline_variation
    from qdax.core.emitters.standard_emitters import MixingEmitter
    from qdax.core.map_elites import MAPElites
    from qdax.tasks.arm import arm_scoring_function
    from qdax.utils.metrics import default_qd_metrics

    key = jax.random.key(seed)
    init = jax.random.uniform(jax.random.fold_in(key, 1), (batch, JOINTS))
    centroids = compute_euclidean_centroids((RESOLUTION, RESOLUTION), 0.0, 1.0)
    variation = functools.partial(isoline_variation, iso_sigma=ISO_SIGMA, line_sigma=LINE_SIGMA, minval=0.0, maxval=1.0)
    emitter = MixingEmitter(mutation_fn=lambda x, k: x, variation_fn=variation, variation_percentage=1.0, batch_size=batch)
    algo = MAPElites(arm_scoring_function, emitter, functools.partial(default_qd_metrics, qd_offset=0.5))
    scan = jax.jit(lambda carry: jax.lax.scan(algo.scan_update, carry, None, length=iterations))

    def fresh():
        repertoire, emitter_state, _ = algo.init(init, centroids, key)
        return repertoire, emitter_state, key

    carry = fresh()
    t = time.perf_counter()
    jax.block_until_ready(scan(carry))
    compile_and_run = time.perf_counter() - t
    carry = fresh()
    jax.block_until_ready(carry)
    t = time.perf_counter()
    (repertoire, _, _), metrics = scan(carry)
    jax.block_until_ready(repertoire)
    elapsed = time.perf_counter() - t
    return {
        "evals_per_s": iterations * batch / elapsed,
        "coverage": float(metrics["coverage"][-1]) / 100.0,  # QDax reports percent
        "qd_score": float(metrics["qd_score"][-1]),
        "compile_s": compile_and_run - elapsed,
    }


def numpy_arm(g: np.ndarray):
    g = np.clip(g, 0.0, 1.0)
    angles = np.cumsum(2 * np.pi * g - np.pi, axis=1)
    scale = 1.0 / (2 * g.shape[1])
    desc = np.stack([np.cos(angles).sum(1) * scale + 0.5, np.sin(angles).sum(1) * scale + 0.5], axis=1)
    return -g.std(axis=1), desc


def bench_ribs(iterations: int, batch: int, seed: int):
    from ribs.archives import GridArchive
    from ribs.emitters import IsoLineEmitter
    from ribs.schedulers import Scheduler

    rng = np.random.default_rng(seed)
    init = rng.uniform(0.0, 1.0, (batch, JOINTS))
    archive = GridArchive(solution_dim=JOINTS, dims=[RESOLUTION, RESOLUTION], ranges=[(0, 1), (0, 1)], qd_score_offset=-0.5, seed=seed)
    emitter = IsoLineEmitter(
        archive, iso_sigma=ISO_SIGMA, line_sigma=LINE_SIGMA, initial_solutions=init,
        bounds=[(0.0, 1.0)] * JOINTS, batch_size=batch, seed=seed,
    )
    scheduler = Scheduler(archive, [emitter])
    sols = scheduler.ask()  # the initial solutions
    scheduler.tell(*numpy_arm(sols))
    t = time.perf_counter()
    for _ in range(iterations):
        sols = scheduler.ask()
        scheduler.tell(*numpy_arm(sols))
    elapsed = time.perf_counter() - t
    stats = archive.stats
    return {
        "evals_per_s": iterations * batch / elapsed,
        "coverage": float(stats.coverage),
        "qd_score": float(stats.qd_score),
        "compile_s": 0.0,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--compare", action="store_true", help="also run QDax 0.5.0 and pyribs 0.12 (bench extra)")
    parser.add_argument("--iterations", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--seeds", type=int, default=1,
                        help="runs per library (seeds 0..N-1); figures are medians (speed) and means (coverage)")
    args = parser.parse_args()

    benches = {"qd": bench_qd}
    if args.compare:
        benches.update(ribs=bench_ribs, qdax=bench_qdax)
    results = {}
    for lib, bench in benches.items():
        runs = [bench(args.iterations, args.batch_size, seed) for seed in range(args.seeds)]
        results[lib] = {
            "evals_per_s": float(np.median([r["evals_per_s"] for r in runs])),
            "coverage": float(np.mean([r["coverage"] for r in runs])),
            "qd_score": float(np.mean([r["qd_score"] for r in runs])),
            "compile_s": float(np.median([r["compile_s"] for r in runs])),
        }
    out = {"iterations": args.iterations, "batch_size": args.batch_size, "seeds": args.seeds,
           "device": jax.devices()[0].platform}
    for lib, r in results.items():
        print(f"{lib:5s} {r['evals_per_s']:>12,.0f} evals/s  coverage {r['coverage']:.2%}  "
              f"qd_score {r['qd_score']:.1f}  compile {r['compile_s']:.2f} s")
        out[f"{lib}_evals_per_s"] = round(r["evals_per_s"], 1)
        out[f"{lib}_coverage"] = round(r["coverage"], 4)
        out[f"{lib}_compile_s"] = round(r["compile_s"], 2)
    for lib in ("qdax", "ribs"):
        out.setdefault(f"{lib}_evals_per_s", None)
        out.setdefault(f"{lib}_coverage", None)
        if out[f"{lib}_evals_per_s"]:
            out[f"qd_over_{lib}"] = round(out["qd_evals_per_s"] / out[f"{lib}_evals_per_s"], 2)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
