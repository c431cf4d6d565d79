"""CMA-ES core: ask+tell time per iteration, ours (emitters.cmaes) against evosax 0.3.2, in the same run.

The configuration of the CMA-ME / CMA-MAE sphere benchmark: ``--instances`` CMA-ES instances (15) of
``--dim`` (100) dimensions and population ``--population`` (36), vmapped into one program. Each timed
iteration is ``ask -> sphere evaluation -> tell`` for all instances (the evaluation is the same cheap
sum of squares for both, and the same in both libraries' loops). The iterations run in a compiled
``lax.scan`` of ``--iterations`` steps (no dispatch overhead), timed after a warm-up call that
compiles; the reported figure is the best of ``--repeats`` timings, divided by the iterations.

Also reported: the best sphere value each library reaches after the timed iterations (a check that
both optimise alike), and the eigendecomposition count of ours.

``OPENBLAS_NUM_THREADS`` defaults to 1 here (set before JAX loads): XLA:CPU's ``eigh`` calls
OpenBLAS' LAPACK, whose threads busy-wait, and on a shared, loaded CPU (this project's 2 cores) the
batched 15 x 100x100 ``eigh`` took 150-340 ms instead of 7-10 ms with its default threads, for both
libraries alike. Set the variable yourself to measure otherwise.

Times "ours" with its default (lazy Cholesky) and with ``decomposition="eigh"`` (lazy, [T]'s).

Needs evosax 0.3.2 (``pip install evosax==0.3.2``, it does not change jax). Without it, only ours is
timed. Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
from jax import lax  # noqa: E402

from emitters.cmaes import CMAES  # noqa: E402


def sphere(x):
    """``(..., D) -> (...)``: the sum of squares (minimised)."""
    return jnp.sum(x * x, axis=-1)


def time_scan(run, carry, repeats):
    """Best wall time of ``run(carry)`` over ``repeats`` calls (after one compiling call)."""
    jax.block_until_ready(run(carry))
    best = float("inf")
    out = None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = jax.block_until_ready(run(carry))
        best = min(best, time.perf_counter() - t0)
    return best, out


def bench_ours(args, means, key, **options):
    cma = CMAES(args.dim, args.population, args.sigma0, **options)
    states = jax.vmap(cma.init)(jax.random.split(key, args.instances), means)

    def step(carry, key):
        states, best = carry
        keys = jax.random.split(key, args.instances)
        samples, states = jax.vmap(cma.ask)(states, keys)
        values = sphere(samples)  # (K, P)
        rankings = jnp.argsort(values, axis=-1)
        states = jax.vmap(cma.tell)(states, samples, rankings)
        return (states, jnp.minimum(best, values.min(axis=-1))), None

    @jax.jit
    def run(carry):
        states, key = carry
        (states, best), _ = lax.scan(step, (states, jnp.full((args.instances,), jnp.inf)), jax.random.split(key, args.iterations))
        return states, best

    seconds, (states, best) = time_scan(run, (states, key), args.repeats)
    return seconds / args.iterations, float(best.max()), int(states.decomposed_at.max())


def bench_evosax(args, means, key):
    from evosax.algorithms import CMA_ES

    es = CMA_ES(population_size=args.population, solution=jnp.zeros(args.dim))
    params = es.default_params.replace(std_init=args.sigma0)
    keys = jax.random.split(key, args.instances)
    states = jax.vmap(es.init, in_axes=(0, 0, None))(keys, means, params)

    def step(carry, key):
        states, best = carry
        k_ask, k_tell = jax.random.split(key)
        samples, states = jax.vmap(es.ask, in_axes=(0, 0, None))(jax.random.split(k_ask, args.instances), states, params)
        values = sphere(samples)
        states, _ = jax.vmap(es.tell, in_axes=(0, 0, 0, 0, None))(
            jax.random.split(k_tell, args.instances), samples, values, states, params
        )
        return (states, jnp.minimum(best, values.min(axis=-1))), None

    @jax.jit
    def run(carry):
        states, key = carry
        (states, best), _ = lax.scan(step, (states, jnp.full((args.instances,), jnp.inf)), jax.random.split(key, args.iterations))
        return states, best

    seconds, (_, best) = time_scan(run, (states, key), args.repeats)
    return seconds / args.iterations, float(best.max())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=15)
    parser.add_argument("--dim", type=int, default=100)
    parser.add_argument("--population", type=int, default=36)
    parser.add_argument("--sigma0", type=float, default=0.5)
    parser.add_argument("--iterations", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    key = jax.random.key(args.seed)
    k_mean, k_ours = jax.random.split(key)
    means = jax.random.uniform(k_mean, (args.instances, args.dim), minval=-1.0, maxval=1.0)

    result = dict(instances=args.instances, dim=args.dim, population=args.population, iterations=args.iterations,
                  jax=jax.__version__, backend=jax.default_backend())
    result.update(openblas_num_threads=os.environ["OPENBLAS_NUM_THREADS"])
    ours_s, ours_best, ours_decomp_gen = bench_ours(args, means, k_ours)
    print(f"ours (lazy Cholesky): {ours_s * 1e3:.3f} ms / iteration (ask+tell, {args.instances} instances); "
          f"worst best sphere value {ours_best:.3e}; last factorisation at iteration {ours_decomp_gen}")
    eigh_s, eigh_best, _ = bench_ours(args, means, k_ours, decomposition="eigh")
    print(f"ours (lazy eigh):     {eigh_s * 1e3:.3f} ms / iteration; worst best sphere value {eigh_best:.3e}")
    result.update(ours_ms=round(ours_s * 1e3, 4), ours_best=ours_best,
                  ours_eigh_ms=round(eigh_s * 1e3, 4), ours_eigh_best=eigh_best)
    try:
        from importlib.metadata import version

        evosax_version = version("evosax")
    except Exception:
        print("evosax not installed: only ours timed")
        result.update(evosax_ms=None)
    else:
        evo_s, evo_best = bench_evosax(args, means, k_ours)
        print(f"evosax {evosax_version}: {evo_s * 1e3:.3f} ms / iteration; worst best sphere value {evo_best:.3e}")
        result.update(evosax_version=evosax_version, evosax_ms=round(evo_s * 1e3, 4), evosax_best=evo_best,
                      evosax_over_ours=round(evo_s / ours_s, 3), evosax_over_ours_eigh=round(evo_s / eigh_s, 3))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
