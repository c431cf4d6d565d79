"""Is a Brax task's score independent of the batch it is evaluated in? And what would making it so cost?

Compares, on random policies of one task (MLP (64, 64)):

- ``vmap``: the task's own ``evaluate`` (the population axis vectorised), in a batch of ``B`` and alone;
- ``lax.map``: the single-episode rollout applied to the candidates one after the other, in a batch of ``B``
  and alone, and a single-episode program with a running sum (what a replay runs);

and times both evaluations (best of 3, after compilation). Run from the repository root::

    python benchmarks/brax_batch_invariance.py hopper_uni 300 8,64,256

Measured (hopper_uni, 300 steps, 2-core CPU shared with other work, jax 0.10, brax 0.14.2): ``vmap`` in a
batch of 8 vs alone differs by up to 6e-7 relative on these (short-lived) random policies (trained ones
diverge to order-one differences: chaos); ``lax.map`` is bitwise equal in a batch of 256 and alone, and
equal to the replay's single-episode program; its cost is 1.7x (B=8), 2.1x (B=64), 3.1x (B=256) the time of
``vmap``, growing with the batch (and far worse on an accelerator, where the batch is the parallelism).
"""

import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

from qd.tasks.brax import make_task
from qd.tasks.brax.rollout import rollout


def best_time(f, x, n=3):
    jax.block_until_ready(f(x))
    times = []
    for _ in range(n):
        t = time.perf_counter()
        jax.block_until_ready(f(x))
        times.append(time.perf_counter() - t)
    return min(times)


def main(name="hopper_uni", episode_length=300, batches=(8, 64, 256)):
    task = make_task(name, episode_length=episode_length, hidden_sizes=(64, 64))
    key, init, opts, T = jax.random.PRNGKey(0), task.init_state(), task.compiler_options, episode_length

    def one(p):
        return rollout(task.env, task.policy.apply, p, init, T, task.step_reward, task.state_descriptor).fitness

    def replay_like(p):  # unbatched episode with evaluate's running sum
        def body(c, _):
            s, alive, fit = c
            n = task.env.step(s, task.policy.apply(p, s.obs))
            return (n, alive & (n.done < 0.5), fit + jnp.where(alive, task.step_reward(n), 0.0)), None

        (_, _, fit), _ = jax.lax.scan(body, (init, jnp.asarray(True), jnp.zeros((), jnp.float32)), None, length=T)
        return fit

    vmapped = jax.jit(lambda g: task.evaluate(g, key).fitnesses, compiler_options=opts)
    mapped = jax.jit(lambda g: jax.lax.map(one, g), compiler_options=opts)
    single = jax.jit(replay_like, compiler_options=opts)
    for b in batches:
        g = task.initial_genotypes(jax.random.PRNGKey(1), b)
        tv, tm = best_time(vmapped, g), best_time(mapped, g)
        print(f"{name} T={T} B={b}: vmap {tv:.3f} s ({b * T / tv:.0f} steps/s), lax.map {tm:.3f} s "
              f"({b * T / tm:.0f} steps/s): {tm / tv:.2f}x", flush=True)
    idx = [0, b // 2, b - 1]
    alone = lambda f: np.array([float(f(jax.tree_util.tree_map(lambda x: x[i:i + 1], g))[0]) for i in idx])
    fv, fm = np.asarray(vmapped(g))[idx], np.asarray(mapped(g))[idx]
    fs = np.array([float(single(jax.tree_util.tree_map(lambda x: x[i], g))) for i in idx])
    print(f"vmap, batch {b} vs alone: max relative difference {np.max(np.abs(fv - alone(vmapped)) / np.abs(fv)):.2g}")
    print(f"lax.map, batch {b} vs alone: bitwise equal {np.array_equal(fm, alone(mapped))}; "
          f"vs the single-episode program: bitwise equal {np.array_equal(fm, fs)}")


if __name__ == "__main__":
    a = sys.argv[1:]
    main(a[0] if a else "hopper_uni", int(a[1]) if len(a) > 1 else 300,
         tuple(int(x) for x in a[2].split(",")) if len(a) > 2 else (8, 64, 256))
