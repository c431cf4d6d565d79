"""Steps/s of each Brax physics backend on one task, as our rollout runs it (used to pick the default).

    python benchmarks/brax_backends.py [--task walker2d_uni] [--batch-size 128] [--episode-length 100]

Each backend runs in its own subprocess (fresh compile, no persistent cache). Prints one line per backend
and, last, one JSON object ``{backend: {"steps_per_s", "compile_s"}}``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time


def measure(task_name: str, backend: str, batch: int, length: int, repeats: int) -> dict:
    import jax

    from qd.tasks.brax import make_task

    task = make_task(task_name, episode_length=length, backend=backend)
    k1, k2 = jax.random.split(jax.random.PRNGKey(0))
    genotypes = task.initial_genotypes(k1, batch)
    evaluate = jax.jit(task.evaluate, compiler_options=task.compiler_options)
    t0 = time.perf_counter()
    jax.block_until_ready(evaluate(genotypes, k2))
    compile_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    for i in range(repeats):
        out = evaluate(genotypes, jax.random.fold_in(k2, i))
    jax.block_until_ready(out)
    run_s = time.perf_counter() - t0
    return {"steps_per_s": batch * length * repeats / run_s, "compile_s": compile_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--task", default="walker2d_uni")
    parser.add_argument("--backends", nargs="+", default=["spring", "positional", "generalized", "mjx"])
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--episode-length", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.task, args.child, args.batch_size, args.episode_length, args.repeats)))
        return
    results = {}
    for backend in args.backends:
        cmd = [sys.executable, __file__, "--child", backend, "--task", args.task, "--batch-size",
               str(args.batch_size), "--episode-length", str(args.episode_length), "--repeats", str(args.repeats)]
        out = subprocess.run(cmd, capture_output=True, text=True)
        if out.returncode != 0:
            results[backend] = {"error": out.stderr.strip().splitlines()[-1] if out.stderr else "failed"}
        else:
            results[backend] = json.loads(out.stdout.strip().splitlines()[-1])
        print(backend, results[backend], flush=True)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
