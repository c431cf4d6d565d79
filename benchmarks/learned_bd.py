"""Learned behaviour spaces: TAXONS, TAXO-N, TAXO-S, NT, AURORA vs novelty search (hand-designed descriptor)
and random search on curling and hard_maze, at one evaluation budget; plus the autoencoder's trained images/s.

What is run (everything through the composition layer, ``build_job(resolve_config({...}))``, as ``qd run``):

- every algorithm evaluates 200 agents per generation for ``--generations`` generations (NS-family, i.e.
  ns / nt / taxons / taxo_n / taxo_s: 100 parents x 2 offspring, plus the initial 100; AURORA and random
  search: an initial batch of 200), so the budgets differ by at most 100 evaluations (reported:
  ``num_evaluations``);
- TAXONS-family options: the STAX AE, the ``"stax"`` schedule with ``--exploration-chunk`` evaluations per
  chunk (trainings after chunks 1, 3, 6, 10, ...), ``--ae-max-epochs`` (early stopping at the 4th rise of
  the validation loss); AURORA: its defaults (Gaussian emitter sigma 0.05, target size 1024, trainings after
  generations 10, 30, 70, ..., ``--ae-max-epochs``); NS: the task's (x, y) descriptor; random search: fresh
  random genomes each generation;
- **coverage** = the final ``gt_coverage``: the share of the 50x50 ground-truth grid reached by any agent
  evaluated so far (not only archived); mean, min and max over ``--seeds`` seeds;
- **wall time** = the steady-state time of a run (``job.init`` + one ``job.scan`` of all generations),
  without compilation: JAX's persistent compilation cache is pointed at a fresh temporary folder, so the
  first seed of each (algorithm, task) compiles and the others load the programs (a fraction of a second);
  ``wall_s`` is the mean over seeds 2..S (seed 1's when only one seed runs, then it includes compiling) and
  ``compile_s`` the first seed's time minus that;
- **training share** = the part of the wall time due to training the AE, measured as the difference with the
  same configuration without training: for TAXONS / TAXO-N / TAXO-S the NT run of the same budget (the same
  encoder and descriptor pipeline, never trained): ``1 - wall(nt) / wall(x)``; for AURORA an AURORA run with
  ``train_every`` larger than the run (only the first training, on the initial batch, remains; 2 seeds, the
  second timed). This includes the re-encoding of the stores after each training (part of the cost of
  training). NT's coverage, too, is the "untrained encoder" control of the TAXONS paper.

Autoencoder speed (``ae_images_per_s``, ``ae_plain_images_per_s``): images trained per second by
:meth:`qd.learned.Autoencoder.train` (inside its ``while_loop`` over epochs and ``fori_loop`` over minibatches,
the way the algorithms train), on a padded dataset of 64x64 curling images rendered from the final states of
random genomes (rows stored as images: ``render=None``), minibatch 128, no validation; the program is compiled
ahead of time (``jax.jit(...).lower(...).compile()``, timed separately) and one call timed. STAX AE
``impl="fast"`` (512 rows x ``--ae-epochs`` epochs) vs ``impl="plain"`` (128 rows, 1 epoch: 1 minibatch, since
XLA:CPU's kernel-gradient convolution is 20-100x slower inside a loop body, jax-ml/jax#12868); the same for
the TAXONS (ICRA) AE (``taxons_ae_...``), and for reference the top-level jitted step of
``benchmarks/ae_speed.py`` (``stax_top_level_*``).

QDax 0.5.0 AURORA (``--compare``): ``qdax.core.aurora.AURORA`` with its ``UnstructuredRepertoire``,
its ``container_size_control`` (every 10 generations, target 1024) and a ``MixingEmitter`` of Gaussian
mutations (sigma 0.05, batch 200, no crossover, genomes clipped to [-5, 5] like ours), on our curling task
as scoring function. QDax ships no image autoencoder (its only AE utility, ``qdax.utils.train_seq2seq``,
is an LSTM on Brax trajectories whose ``lstm_ae_train`` loops over epochs in Python and prints each one), so
its ``encoder_function`` / ``training_function`` hooks are given this library's STAX AE (``impl="fast"``),
with the same training (early stopping, ``--ae-max-epochs``) and the same schedule (generations 10, 30,
70, ...); the initial ``l`` is set as ours (:func:`qd.algorithms.aurora.threshold_for_size`); QDax keeps
``l`` across trainings. Coverage is computed the same way (every evaluated agent's ground truth, 50x50).
QDax's loop is a Python loop of jitted generations; its compile time is excluded the same way (a
second seed reuses the in-memory compiled programs). So the comparison is of the QD loops and containers
around one AE.

Results (jax 0.10.2, XLA:CPU, 2 CPU cores shared with another agent's jobs, load average 1.4 at the
start, 4.8-5 for most of the run; ``python benchmarks/learned_bd.py --quick --compare``: 30 generations
(6,000-6,100 evaluations), 3 seeds, AE trainings of at most 5 epochs, hard maze of 1000 steps; QDax
comparison 10 generations, 2 seeds). Total 1303 s (21.7 min) at that load: more than the 15 minutes
aimed at; the QDax comparison took about 5.5 of them (without ``--compare`` about 16 min at load 5).
Coverage: mean [min, max] over seeds; wall: steady state, s; train: share of the wall time due to training:

    algorithm   curling                          hard_maze
                coverage              wall train  coverage              wall train
    taxons      0.347 [0.210, 0.513]  17.3  64%   0.189 [0.174, 0.204]  20.3  47%
    taxo_n      0.369 [0.256, 0.429]  16.5  63%   0.211 [0.170, 0.236]  28.3  62%
    taxo_s      0.212 [0.161, 0.304]  17.6  65%   0.143 [0.124, 0.161]  27.0  60%
    nt          0.351 [0.232, 0.438]   6.1        0.200 [0.172, 0.224]  10.8
    aurora      0.372 [0.300, 0.418]  25.3  61%   0.186 [0.169, 0.196]  29.7  53%
    ns          0.786 [0.767, 0.796]   1.5        0.247 [0.185, 0.284]   5.9
    random      0.342 [0.338, 0.351]   0.6        0.170 [0.168, 0.172]   5.5

**The paper's claim does not hold at this budget.** NS with the hand-designed (x, y) descriptor is far
ahead on curling (0.79 vs 0.35); TAXONS is indistinguishable from NT (the untrained encoder) and from
random search on curling, and between them on hard_maze, with a large spread over seeds (curling
0.21-0.51). TAXO-S (surprise only) is the worst everywhere, as in the paper. 6,000 evaluations and
AE trainings of <= 5 epochs are a small fraction of the paper's runs (its curling figures come after far
more generations and 100-epoch trainings), so this says the claim is not visible at a budget that fits a
quick run on 2 cores, not that it is false; run ``--generations 200 --ae-max-epochs 100`` (hours here) to
test it. Random search covers much on curling because random genomes already spread the ball widely.

QDax 0.5.0's AURORA **runs on jax 0.10.2** (no API failure) with the hooks described above; curling,
10 generations (2,000-2,200 evaluations), 2 seeds: QDax coverage 0.145 [0.136, 0.154], wall 118.0 s
(compile 53 s); ours 0.169 [0.160, 0.178], wall 9.4 s: ours is 12.6x faster. Where QDax's time goes
(profiled): a generation costs 1.1-1.2 s (ours about 0.3 s with the evaluation), and every re-addition of
the whole container (``UnstructuredRepertoire.init`` after each training and each container-size control)
adds 2048 candidates at once through ``intra_batch_comp``, a ``vmap`` over the candidates of a full
``top_k`` over all of them (2048 x 2048), about 20 s each on this machine. (The initial batch's
container is built once here, not rebuilt as QDax's ``init_ask_tell`` does after its first training:
that rebuild alone cost another 20 s.)

Autoencoder trained images/s inside ``Autoencoder.train`` (64x64 curling images, minibatch 128):
STAX AE fast 333.9, plain 7.0 (47.5x); TAXONS AE fast 239.4, plain 3.6 (65.6x); for reference the
top-level jitted step (``benchmarks/ae_speed.py``): STAX fast 313.8, plain 67.4 img/s, i.e. the plain
layers lose 10x more inside the loop (jax-ml/jax#12868) and the fast ones lose nothing. An earlier run at
load ~3 (6 generations, 2 seeds, 1 epoch): STAX 903.8 vs 17.2, TAXONS 513.6 vs 9.6, top level 680.6 vs
160.5 img/s: absolute figures move 2-3x with the machine's load, the ratios much less.

Last JSON line of that run:

    {"taxons_curling_coverage": 0.3471, "taxons_curling_coverage_min": 0.2104, "taxons_curling_coverage_max": 0.5128, "taxons_curling_wall_s": 17.25, "taxons_curling_evaluations": 6100, "taxons_curling_compile_s": 15.2, "taxons_curling_train_share": 0.644, "taxo_n_curling_coverage": 0.3688, "taxo_n_curling_coverage_min": 0.2556, "taxo_n_curling_coverage_max": 0.4288, "taxo_n_curling_wall_s": 16.48, "taxo_n_curling_evaluations": 6100, "taxo_n_curling_compile_s": 8.7, "taxo_n_curling_train_share": 0.627, "taxo_s_curling_coverage": 0.2117, "taxo_s_curling_coverage_min": 0.1612, "taxo_s_curling_coverage_max": 0.3036, "taxo_s_curling_wall_s": 17.6, "taxo_s_curling_evaluations": 6100, "taxo_s_curling_compile_s": 5.4, "taxo_s_curling_train_share": 0.651, "nt_curling_coverage": 0.3508, "nt_curling_coverage_min": 0.2316, "nt_curling_coverage_max": 0.438, "nt_curling_wall_s": 6.15, "nt_curling_evaluations": 6100, "nt_curling_compile_s": 2.7, "aurora_curling_coverage": 0.3719, "aurora_curling_coverage_min": 0.2996, "aurora_curling_coverage_max": 0.4184, "aurora_curling_wall_s": 25.31, "aurora_curling_evaluations": 6000, "aurora_curling_compile_s": 14.6, "aurora_curling_train_share": 0.611, "ns_curling_coverage": 0.7863, "ns_curling_coverage_min": 0.7672, "ns_curling_coverage_max": 0.7964, "ns_curling_wall_s": 1.45, "ns_curling_evaluations": 6100, "ns_curling_compile_s": 2.5, "random_curling_coverage": 0.3424, "random_curling_coverage_min": 0.338, "random_curling_coverage_max": 0.3512, "random_curling_wall_s": 0.56, "random_curling_evaluations": 6000, "random_curling_compile_s": 1.8, "taxons_hard_maze_coverage": 0.1891, "taxons_hard_maze_coverage_min": 0.1744, "taxons_hard_maze_coverage_max": 0.204, "taxons_hard_maze_wall_s": 20.32, "taxons_hard_maze_evaluations": 6100, "taxons_hard_maze_compile_s": 16.2, "taxons_hard_maze_train_share": 0.468, "taxo_n_hard_maze_coverage": 0.2112, "taxo_n_hard_maze_coverage_min": 0.17, "taxo_n_hard_maze_coverage_max": 0.236, "taxo_n_hard_maze_wall_s": 28.34, "taxo_n_hard_maze_evaluations": 6100, "taxo_n_hard_maze_compile_s": 17.5, "taxo_n_hard_maze_train_share": 0.619, "taxo_s_hard_maze_coverage": 0.1431, "taxo_s_hard_maze_coverage_min": 0.1236, "taxo_s_hard_maze_coverage_max": 0.1612, "taxo_s_hard_maze_wall_s": 26.98, "taxo_s_hard_maze_evaluations": 6100, "taxo_s_hard_maze_compile_s": 14.0, "taxo_s_hard_maze_train_share": 0.6, "nt_hard_maze_coverage": 0.1997, "nt_hard_maze_coverage_min": 0.172, "nt_hard_maze_coverage_max": 0.2236, "nt_hard_maze_wall_s": 10.8, "nt_hard_maze_evaluations": 6100, "nt_hard_maze_compile_s": 4.2, "aurora_hard_maze_coverage": 0.1863, "aurora_hard_maze_coverage_min": 0.1688, "aurora_hard_maze_coverage_max": 0.196, "aurora_hard_maze_wall_s": 29.65, "aurora_hard_maze_evaluations": 6000, "aurora_hard_maze_compile_s": 25.9, "aurora_hard_maze_train_share": 0.528, "ns_hard_maze_coverage": 0.2467, "ns_hard_maze_coverage_min": 0.1852, "ns_hard_maze_coverage_max": 0.284, "ns_hard_maze_wall_s": 5.93, "ns_hard_maze_evaluations": 6100, "ns_hard_maze_compile_s": 5.3, "random_hard_maze_coverage": 0.17, "random_hard_maze_coverage_min": 0.1684, "random_hard_maze_coverage_max": 0.1724, "random_hard_maze_wall_s": 5.45, "random_hard_maze_evaluations": 6000, "random_hard_maze_compile_s": 2.6, "compare_generations": 10, "compare_seeds": 2, "aurora_vs_qdax_curling_coverage": 0.1694, "aurora_vs_qdax_curling_wall_s": 9.4, "qdax_aurora_curling_coverage": 0.1448, "qdax_aurora_curling_coverage_min": 0.1356, "qdax_aurora_curling_coverage_max": 0.154, "qdax_aurora_curling_wall_s": 118.01, "qdax_aurora_curling_compile_s": 53.0, "qdax_aurora_curling_elites": 2035, "ae_images_per_s": 333.9, "ae_plain_images_per_s": 7.0, "ae_speedup": 47.5, "taxons_ae_images_per_s": 239.4, "taxons_ae_plain_images_per_s": 3.6, "taxons_ae_speedup": 65.6, "stax_top_level_images_per_s": 313.8, "stax_top_level_plain_images_per_s": 67.4, "claim_curling": false, "claim_hard_maze": false, "generations": 30, "seeds": 3, "batch_size": 200, "quick": true, "ae_max_epochs": 5, "hard_maze_steps": 1000, "exploration_chunk": 1000, "total_s": 1303.0, "load": [4.89, 4.82, 3.98]}

Last line: one JSON object, ``<algorithm>_<task>_coverage`` and ``<algorithm>_<task>_wall_s`` (and
``_coverage_min/_max``, ``_compile_s``, ``_train_share``, ``_evaluations``), ``ae_images_per_s``,
``ae_plain_images_per_s``, ... and, with ``--compare``, ``qdax_aurora_curling_*`` or ``qdax_aurora_error``.

    python benchmarks/learned_bd.py --quick [--compare]
    python benchmarks/learned_bd.py --generations 100 --seeds 3 [--tasks curling hard_maze] [--algorithms ...]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

ALGORITHMS = ("taxons", "taxo_n", "taxo_s", "nt", "aurora", "ns", "random")
TASKS = ("curling", "hard_maze")
TRAINED = ("taxons", "taxo_n", "taxo_s")
BATCH = 200


def _load():
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:  # pragma: no cover
        return None


# --------------------------------------------------------------------------------------------- #
# One run through the composition layer
# --------------------------------------------------------------------------------------------- #
def _config(algorithm, task, generations, seed, args, **overrides):
    from qd.config import resolve_config

    cfg = {"algorithm": algorithm, "task": task, "batch_size": BATCH, "iterations": generations, "seed": seed}
    if algorithm in TRAINED or algorithm == "nt":
        cfg.update(exploration_chunk=args.exploration_chunk, ae_max_epochs=args.ae_max_epochs)
    if algorithm == "aurora":
        cfg.update(ae_max_epochs=args.ae_max_epochs)
    if task == "hard_maze" and args.hard_maze_steps:
        cfg["task_options"] = {"num_steps": args.hard_maze_steps}
    cfg.update(overrides)
    return resolve_config(cfg)


def run_once(algorithm, task, generations, seed, args, **overrides):
    """One run: ``{"wall": s, "coverage", "evaluations", "trainings", "finite"}`` (init + one scan)."""
    from qd.runner import build_job

    job = build_job(_config(algorithm, task, generations, seed, args, **overrides))
    t = time.perf_counter()
    state, _ = job.init(jax.random.PRNGKey(seed))
    state, metrics = job.scan(state, generations)
    jax.block_until_ready(state)
    wall = time.perf_counter() - t
    last = {k: np.asarray(v)[-1] for k, v in metrics.items() if np.ndim(v) == 1}
    # NaN-free coverage throughout; a finite AE loss at the end where the AE trained
    finite = bool(np.all(np.isfinite(np.asarray(metrics["gt_coverage"]))))
    if int(last.get("ae_trainings", 0)) > 0 and "ae_loss" in last:
        finite = finite and bool(np.isfinite(last["ae_loss"]))
    return {
        "wall": wall,
        "coverage": float(last["gt_coverage"]),
        "evaluations": int(last["num_evaluations"]),
        "trainings": int(last.get("ae_trainings", 0)),
        "finite": bool(finite),
        "ae_loss": float(last.get("ae_loss", float("nan"))),
    }


def run_seeds(algorithm, task, generations, seeds, args, **overrides):
    runs = [run_once(algorithm, task, generations, s, args, **overrides) for s in range(seeds)]
    steady = [r["wall"] for r in runs[1:]] or [runs[0]["wall"]]
    wall = statistics.mean(steady)
    cov = [r["coverage"] for r in runs]
    return {
        "coverage": statistics.mean(cov),
        "coverage_min": min(cov),
        "coverage_max": max(cov),
        "wall_s": wall,
        "compile_s": max(0.0, runs[0]["wall"] - wall) if len(runs) > 1 else None,
        "evaluations": runs[0]["evaluations"],
        "trainings": runs[0]["trainings"],
        "finite": all(r["finite"] for r in runs),
        "seed_coverages": cov,
    }


# --------------------------------------------------------------------------------------------- #
# Autoencoder speed inside Autoencoder.train
# --------------------------------------------------------------------------------------------- #
def curling_images(n, seed=0):
    """``n`` 64x64x3 images of curling final states of random genomes."""
    from qd.tasks.sparse import Curling

    task = Curling()
    key = jax.random.PRNGKey(seed)
    genotypes = task.initial_genotypes(key, n)
    ev = jax.jit(task.evaluate)(genotypes, key)
    return jax.jit(task.render)(ev.extras["final_state"])


def train_images_per_s(model, images, epochs, batch_size=128, seed=0):
    """``(images/s, compile_s)`` of :meth:`Autoencoder.train` (``epochs`` epochs, no validation) on ``images``."""
    from qd.learned.training import Autoencoder, padded_dataset

    ae = Autoencoder(model, render=None, batch_size=batch_size)
    state = ae.init(jax.random.PRNGKey(seed), images[:1])
    data = padded_dataset(images, capacity=images.shape[0])
    train = jax.jit(lambda s, d, k: ae.train(s, d, k, epochs))
    t = time.perf_counter()
    compiled = train.lower(state, data, jax.random.PRNGKey(1)).compile()
    compile_s = time.perf_counter() - t
    t = time.perf_counter()
    out = compiled(state, data, jax.random.PRNGKey(1))
    jax.block_until_ready(out)
    seconds = time.perf_counter() - t
    assert int(out.epochs) == epochs and np.isfinite(float(out.loss)), (int(out.epochs), float(out.loss))
    return images.shape[0] * epochs / seconds, compile_s


def ae_speed(args):
    from qd.learned.autoencoders import stax_autoencoder, taxons_autoencoder

    images = curling_images(512)
    out = {}
    rows = []
    for name, build in (("ae", stax_autoencoder), ("taxons_ae", taxons_autoencoder)):
        fast, cf = train_images_per_s(build(impl="fast"), images, args.ae_epochs)
        plain, cp = train_images_per_s(build(impl="plain"), images[:128], 1)
        out[f"{name}_images_per_s"] = round(fast, 1)
        out[f"{name}_plain_images_per_s"] = round(plain, 1)
        out[f"{name}_speedup"] = round(fast / plain, 1)
        rows.append((name, fast, plain, cf, cp))
        print(f"  {name}: Autoencoder.train fast {fast:.1f} img/s (compile {cf:.1f} s), plain {plain:.1f} img/s "
              f"(compile {cp:.1f} s)", flush=True)
    if not args.skip_top_level:
        from benchmarks.ae_speed import training_images_per_s

        out["stax_top_level_images_per_s"] = round(training_images_per_s(stax_autoencoder(impl="fast"), 128, 2), 1)
        out["stax_top_level_plain_images_per_s"] = round(training_images_per_s(stax_autoencoder(impl="plain"), 128, 2), 1)
        print(f"  STAX top-level jitted step (ae_speed.py): fast {out['stax_top_level_images_per_s']} img/s, "
              f"plain {out['stax_top_level_plain_images_per_s']} img/s", flush=True)
    return out


# --------------------------------------------------------------------------------------------- #
# QDax 0.5.0 AURORA on our curling (imports inside: the benchmark runs without QDax)
# --------------------------------------------------------------------------------------------- #
def qdax_aurora(generations, seeds, args, target_size=1024, train_every=10, csc_every=10, sigma=0.05, profile=False):
    """QDax's AURORA loop around our STAX AE on curling (module docstring). ``{"coverage", "wall_s", ...}``."""
    from jax.flatten_util import ravel_pytree
    from qdax.core.aurora import AURORA
    from qdax.core.containers.unstructured_repertoire import UnstructuredRepertoire
    from qdax.core.emitters.standard_emitters import MixingEmitter
    from qdax.custom_types import AuroraExtraInfo

    from qd.algorithms.aurora import threshold_for_size
    from qd.learned.autoencoders import stax_autoencoder
    from qd.learned.training import Autoencoder, padded_dataset
    from qd.metrics import GroundTruth, exploration_metrics, exploration_observe
    from qd.tasks.sparse import Curling

    task = Curling()
    truth = GroundTruth.create(task.descriptor_bounds, task.num_reward_areas, 50)
    g0 = task.initial_genotypes(jax.random.PRNGKey(0), 1)
    template = jax.tree_util.tree_map(lambda x: x[0], task.evaluate(g0, jax.random.PRNGKey(0)).extras["final_state"])
    _, unravel = ravel_pytree(template)
    render = lambda flat: task.render(jax.vmap(unravel)(flat))
    ae = Autoencoder(stax_autoencoder(impl="fast"), render=render)
    stats_box = {}

    def scoring(genotypes, key):
        ev = task.evaluate(genotypes, key)
        flat = jax.vmap(lambda s: ravel_pytree(s)[0])(ev.extras["final_state"])
        return ev.fitnesses, ev.descriptors, {"observations": flat, "gt": ev}

    def encoder(observations, info):
        return ae.encode(info.model_params, observations)[0]

    def training(repertoire, params, iteration, observations, key):
        mask = repertoire.fitnesses.reshape(-1) != -jnp.inf
        data = padded_dataset(observations, mask=mask, capacity=observations.shape[0])
        return AuroraExtraInfo(model_params=ae.train(params, data, key, args.ae_max_epochs, 0.2, 4))

    def mutation(x, key):
        return jnp.clip(x + sigma * jax.random.normal(key, x.shape), -5.0, 5.0)

    emitter = MixingEmitter(mutation_fn=mutation, variation_fn=None, variation_percentage=0.0, batch_size=BATCH)
    def qdax_scoring(genotypes, key):
        fit, desc, extra = scoring(genotypes, key)
        return fit, desc, {"observations": extra["observations"]}

    aurora = AURORA(scoring_function=qdax_scoring,
                    emitter=emitter, metrics_function=lambda r: {}, encoder_function=encoder,
                    training_function=training, observations_key="observations")

    @jax.jit
    def init(key):
        k1, k2, k3 = jax.random.split(key, 3)
        genotypes = task.initial_genotypes(k1, BATCH)
        fit, desc, extra = scoring(genotypes, k2)
        info = AuroraExtraInfo(model_params=ae.init(k3, extra["observations"][:1]))
        # QDax's init_ask_tell, in its order (container with l = 0 so that the whole batch enters, emitter init,
        # first training on the container's observations, re-encoding), except that the re-encoded container is
        # built once, with our initial l, instead of being rebuilt at l = 0 and again
        obs = {"observations": extra["observations"]}
        rep = UnstructuredRepertoire.init(genotypes=genotypes, fitnesses=fit, descriptors=encoder(obs["observations"], info),
                                          extra_scores=obs, keys_extra_scores=("observations",), l_value=jnp.zeros((1,)),
                                          max_size=BATCH)
        em = emitter.init(key=k3, repertoire=rep, genotypes=genotypes, fitnesses=fit, descriptors=desc, extra_scores=obs)
        info = training(rep, info.model_params, 0, rep.extra_scores["observations"], k3)
        latents = encoder(obs["observations"], info)
        l0 = threshold_for_size(latents, jnp.ones((BATCH,), bool), target_size)
        rep = UnstructuredRepertoire.init(genotypes=genotypes, fitnesses=fit, descriptors=latents, extra_scores=obs,
                                          keys_extra_scores=("observations",), l_value=jnp.full((1,), l0),
                                          max_size=2 * target_size)
        stats = exploration_observe(truth.init(), extra["gt"])
        return rep, em, info, stats

    @jax.jit
    def step(rep, em, info, stats, key):
        k1, k2 = jax.random.split(key)
        genotypes, extra_info = aurora.ask(rep, em, k1)
        fit, desc, extra = scoring(genotypes, k2)
        rep, em, _ = aurora.tell(genotypes, fit, desc, rep, em, info, {"observations": extra["observations"]}, extra_info)
        return rep, em, exploration_observe(stats, extra["gt"])

    @jax.jit
    def retrain(rep, info, iteration, key):
        return aurora.train(rep, info.model_params, iteration, key)

    @jax.jit
    def csc(rep, previous):
        return aurora.container_size_control(rep, target_size, previous)

    schedule, interval, g = set(), train_every, train_every
    while g <= generations:
        schedule.add(g)
        interval *= 2
        g += interval

    runs = []
    for seed in range(seeds):
        t = time.perf_counter()
        key = jax.random.PRNGKey(seed)
        rep, em, info, stats = init(key)
        if profile:
            jax.block_until_ready(rep)
            print(f"    qdax init {time.perf_counter() - t:.2f} s", flush=True)
        previous = jnp.zeros(())
        for gen in range(1, generations + 1):
            key, k1, k2 = jax.random.split(key, 3)
            t1 = time.perf_counter()
            rep, em, stats = step(rep, em, info, stats, k1)
            if profile:
                jax.block_until_ready(rep)
                print(f"    qdax step {gen} {time.perf_counter() - t1:.2f} s", flush=True)
            if gen in schedule:
                rep, info = retrain(rep, info, gen, k2)
            if gen % csc_every == 0:
                rep, previous = csc(rep, previous)
        jax.block_until_ready((rep, stats))
        wall = time.perf_counter() - t
        cov = float(exploration_metrics(stats)["gt_coverage"])
        runs.append({"wall": wall, "coverage": cov, "elites": int(rep.get_number_genotypes()),
                     "finite": bool(np.isfinite(float(info.model_params.loss)))})
    steady = [r["wall"] for r in runs[1:]] or [runs[0]["wall"]]
    covs = [r["coverage"] for r in runs]
    return {"coverage": statistics.mean(covs), "coverage_min": min(covs), "coverage_max": max(covs),
            "wall_s": statistics.mean(steady), "compile_s": max(0.0, runs[0]["wall"] - statistics.mean(steady)),
            "elites": runs[-1]["elites"], "finite": all(r["finite"] for r in runs), "trainings": len(schedule) + 1,
            "evaluations": BATCH * (generations + 1)}


# --------------------------------------------------------------------------------------------- #
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="30 generations, 3 seeds, AE trainings of at most 5 epochs, hard maze of 1000 steps")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--generations", type=int, default=100, help="generations of 200 evaluations")
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=TASKS)
    parser.add_argument("--algorithms", nargs="+", default=list(ALGORITHMS), choices=ALGORITHMS)
    parser.add_argument("--exploration-chunk", type=int, default=1000, help="TAXONS: evaluations per chunk")
    parser.add_argument("--ae-max-epochs", type=int, default=None,
                        help="most epochs of one AE training (default: 100 TAXONS, 20 AURORA; --quick: 10)")
    parser.add_argument("--hard-maze-steps", type=int, default=None, help="hard_maze episode length (default 2000)")
    parser.add_argument("--ae-epochs", type=int, default=2, help="epochs of the fast-AE speed measurement (512 rows)")
    parser.add_argument("--skip-top-level", action="store_true", help="skip the top-level-step AE reference")
    parser.add_argument("--skip-ae", action="store_true", help="skip the AE speed measurements")
    parser.add_argument("--compare", action="store_true", help="also QDax 0.5.0's AURORA on curling")
    parser.add_argument("--compare-generations", type=int, default=None,
                        help="generations of the QDax comparison (default --generations; --quick: 10)")
    parser.add_argument("--compare-seeds", type=int, default=None, help="seeds of the QDax comparison (--quick: 2)")
    args = parser.parse_args(argv)
    if args.quick:
        args.generations = 30 if "--generations" not in " ".join(argv or sys.argv) else args.generations
        args.ae_max_epochs = args.ae_max_epochs or 5
        args.hard_maze_steps = args.hard_maze_steps or 1000
        args.compare_generations = args.compare_generations or 10
        args.compare_seeds = args.compare_seeds or 2
    per_algo_epochs = args.ae_max_epochs

    from qd.cache import enable_compilation_cache

    cache = enable_compilation_cache(tempfile.mkdtemp(prefix="learned_bd_cache_"))
    print(f"jax {jax.__version__}, {args.generations} generations x {BATCH} evaluations, {args.seeds} seeds, "
          f"compilation cache {cache}, load {_load()}", flush=True)
    t_all = time.perf_counter()
    result = {}
    table = {}
    for task in args.tasks:
        for algo in args.algorithms:
            args.ae_max_epochs = per_algo_epochs or (20 if algo == "aurora" else 100)
            t = time.perf_counter()
            try:
                r = run_seeds(algo, task, args.generations, args.seeds, args)
            except Exception as exc:  # report, keep going
                traceback.print_exc()
                result[f"{algo}_{task}_error"] = f"{type(exc).__name__}: {exc}"[:300]
                continue
            table[(algo, task)] = r
            print(f"  {algo:7s} {task:9s} coverage {r['coverage']:.3f} [{r['coverage_min']:.3f}, {r['coverage_max']:.3f}] "
                  f"wall {r['wall_s']:.1f} s (compile {r['compile_s'] or 0:.1f} s) evals {r['evaluations']} "
                  f"trainings {r['trainings']} finite {r['finite']} seeds {[round(c, 4) for c in r['seed_coverages']]} "
                  f"({time.perf_counter() - t:.0f} s)", flush=True)
        if "aurora" in args.algorithms:
            args.ae_max_epochs = per_algo_epochs or 20
            ref = run_seeds("aurora", task, args.generations, min(2, args.seeds) or 1, args,
                            train_every=args.generations + 1)
            table[("aurora_notrain", task)] = ref
            print(f"  aurora without trainings after the first, {task}: wall {ref['wall_s']:.1f} s, "
                  f"coverage {ref['coverage']:.3f}", flush=True)
    for (algo, task), r in table.items():
        if algo == "aurora_notrain":
            continue
        ref = table.get(("nt", task)) if algo in TRAINED else table.get(("aurora_notrain", task)) if algo == "aurora" else None
        share = None if ref is None else max(0.0, 1.0 - ref["wall_s"] / r["wall_s"])
        r["train_share"] = share
        p = f"{algo}_{task}"
        result.update({f"{p}_coverage": round(r["coverage"], 4), f"{p}_coverage_min": round(r["coverage_min"], 4),
                       f"{p}_coverage_max": round(r["coverage_max"], 4), f"{p}_wall_s": round(r["wall_s"], 2),
                       f"{p}_evaluations": r["evaluations"]})
        if r["compile_s"] is not None:
            result[f"{p}_compile_s"] = round(r["compile_s"], 1)
        if share is not None:
            result[f"{p}_train_share"] = round(share, 3)
        if not r["finite"]:
            result[f"{p}_nonfinite"] = True

    if args.compare:
        print("QDax 0.5.0 AURORA on curling ...", flush=True)
        try:
            args.ae_max_epochs = per_algo_epochs or 20
            gens = args.compare_generations or args.generations
            seeds = args.compare_seeds or args.seeds
            q = qdax_aurora(gens, seeds, args)
            ours = run_seeds("aurora", "curling", gens, seeds, args) if (gens, seeds) != (args.generations, args.seeds) \
                else table.get(("aurora", "curling")) or run_seeds("aurora", "curling", gens, seeds, args)
            table[("aurora_vs_qdax", "curling")] = ours
            result.update({"compare_generations": gens, "compare_seeds": seeds,
                           "aurora_vs_qdax_curling_coverage": round(ours["coverage"], 4),
                           "aurora_vs_qdax_curling_wall_s": round(ours["wall_s"], 2)})
            table[("qdax_aurora", "curling")] = q
            result.update({"qdax_aurora_curling_coverage": round(q["coverage"], 4),
                           "qdax_aurora_curling_coverage_min": round(q["coverage_min"], 4),
                           "qdax_aurora_curling_coverage_max": round(q["coverage_max"], 4),
                           "qdax_aurora_curling_wall_s": round(q["wall_s"], 2),
                           "qdax_aurora_curling_compile_s": round(q["compile_s"], 1),
                           "qdax_aurora_curling_elites": q["elites"]})
        except Exception as exc:
            traceback.print_exc()
            result["qdax_aurora_error"] = f"{type(exc).__name__}: {exc}"[:500]

    if not args.skip_ae:
        print("AE trained images/s ...", flush=True)
        result.update(ae_speed(args))

    print()
    print(f"{'algorithm':14s} {'task':10s} {'coverage':>9s} {'min':>6s} {'max':>6s} {'wall s':>8s} {'compile s':>9s} "
          f"{'train %':>7s} {'evals':>6s} {'trains':>6s}")
    for (algo, task), r in table.items():
        share = r.get("train_share")
        print(f"{algo:14s} {task:10s} {r['coverage']:9.3f} {r['coverage_min']:6.3f} {r['coverage_max']:6.3f} "
              f"{r['wall_s']:8.1f} {r['compile_s'] or 0:9.1f} {'' if share is None else f'{100 * share:6.0f}%':>7s} "
              f"{r['evaluations']:6d} {r['trainings']:6d}")
    for task in args.tasks:
        cov = {a: table[(a, task)]["coverage"] for a in ("taxons", "nt", "ns", "random") if (a, task) in table}
        if len(cov) == 4:
            holds = cov["taxons"] > cov["random"] and cov["taxons"] > cov["nt"] and cov["taxons"] >= 0.8 * cov["ns"]
            result[f"claim_{task}"] = bool(holds)
            print(f"claim on {task} (TAXONS > random, > NT, >= 0.8 NS): {holds}  "
                  + ", ".join(f"{a} {c:.3f}" for a, c in cov.items()))
    result.update(generations=args.generations, seeds=args.seeds, batch_size=BATCH, quick=bool(args.quick),
                  ae_max_epochs=per_algo_epochs, hard_maze_steps=args.hard_maze_steps or 2000,
                  exploration_chunk=args.exploration_chunk, total_s=round(time.perf_counter() - t_all, 1), load=_load())
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
