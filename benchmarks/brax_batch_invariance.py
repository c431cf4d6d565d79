"""Is a Brax task's score independent of the batch it is evaluated in? What does ``batch_invariant`` cost?

Compares, on random policies of one task (MLP (64, 64)), through the task API:

- default: ``make_task(name).evaluate`` (the population axis vectorised, ``vmap``), in a batch of ``B`` and
  alone;
- ``batch_invariant=True``: ``make_task(name, batch_invariant=True).evaluate`` (``lax.map`` of the
  single-episode rollout, :meth:`qd.tasks.brax.tasks.BraxTask.episode_stats`), in a batch of ``B``, alone,
  and replayed (:func:`qd.tasks.brax.replay.replay_episode`, what ``qd replay`` runs);

and times both evaluations, jitted with the task's compiler options (best of 3, after compilation). The
last line printed is one JSON object with the measurements. Run from the repository root::

    python benchmarks/brax_batch_invariance.py hopper_uni 300 8,64,256

Measured (hopper_uni, 300 steps, 2-core CPU shared with other work, jax 0.10, brax 0.14.2): the default in a
batch of 8 vs alone differs by up to 6e-7 relative on these (short-lived) random policies (trained ones
diverge to order-one differences: chaos); ``batch_invariant`` is bitwise equal in a batch of 256, alone and
replayed; its cost is 1.65x (B=8), 1.62x (B=64), 2.17x (B=256) the time of the default (an earlier run
under other load: 1.7x, 2.1x, 3.1x), growing with the batch (and far worse on an accelerator, where the
batch is the parallelism).
"""

import json
import sys
import time

import jax
import numpy as np

from qd.tasks.brax import make_task
from qd.tasks.brax.replay import replay_episode


def best_time(f, x, n=3):
    jax.block_until_ready(f(x))
    times = []
    for _ in range(n):
        t = time.perf_counter()
        jax.block_until_ready(f(x))
        times.append(time.perf_counter() - t)
    return min(times)


def main(name="hopper_uni", episode_length=300, batches=(8, 64, 256)):
    tasks = {bi: make_task(name, episode_length=episode_length, hidden_sizes=(64, 64), batch_invariant=bi)
             for bi in (False, True)}
    key, T = jax.random.PRNGKey(0), episode_length
    fns = {bi: jax.jit(lambda g, t=t: t.evaluate(g, key).fitnesses, compiler_options=t.compiler_options)
           for bi, t in tasks.items()}
    vmapped, mapped = fns[False], fns[True]
    result = {"task": name, "episode_length": T, "hidden_sizes": [64, 64], "backend": tasks[True].backend,
              "devices": 1, "jax": jax.__version__, "batches": {}}
    for b in batches:
        g = tasks[True].initial_genotypes(jax.random.PRNGKey(1), b)
        tv, tm = best_time(vmapped, g), best_time(mapped, g)
        print(f"{name} T={T} B={b}: default (vmap) {tv:.3f} s ({b * T / tv:.0f} steps/s), batch_invariant "
              f"(lax.map) {tm:.3f} s ({b * T / tm:.0f} steps/s): {tm / tv:.2f}x", flush=True)
        result["batches"][str(b)] = {"default_s": round(tv, 4), "batch_invariant_s": round(tm, 4),
                                     "cost": round(tm / tv, 2)}
    idx = [0, b // 2, b - 1]
    pick = lambda i: jax.tree_util.tree_map(lambda x: x[i], g)
    alone = lambda f: np.array([float(f(jax.tree_util.tree_map(lambda x: x[None], pick(i)))[0]) for i in idx])
    fv, fm = np.asarray(vmapped(g))[idx], np.asarray(mapped(g))[idx]
    replayed = np.array([replay_episode(tasks[True], pick(i)).fitness for i in idx], np.float32)
    diff = float(np.max(np.abs(fv - alone(vmapped)) / np.maximum(np.abs(fv), 1e-30)))
    same_alone, same_replay = bool(np.array_equal(fm, alone(mapped))), bool(np.array_equal(fm, replayed))
    print(f"default, batch {b} vs alone: max relative difference {diff:.2g}")
    print(f"batch_invariant, batch {b} vs alone: bitwise equal {same_alone}; vs replay_episode: bitwise equal "
          f"{same_replay}")
    result.update({"checked_batch": b, "default_batch_vs_alone_max_rel_diff": diff,
                   "batch_invariant_batch_equals_alone": same_alone,
                   "batch_invariant_batch_equals_replay": same_replay})
    print(json.dumps(result))


if __name__ == "__main__":
    a = sys.argv[1:]
    main(a[0] if a else "hopper_uni", int(a[1]) if len(a) > 1 else 300,
         tuple(int(x) for x in a[2].split(",")) if len(a) > 2 else (8, 64, 256))
