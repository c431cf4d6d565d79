"""MAP-Elites with iso+line variation on Brax's walker (``walker2d_uni``), then a plot and a replay.

The descriptor is how often each foot touches the ground (two numbers in [0, 1]); the fitness is the
walker's reward summed over the episode. The budget is small on purpose: measured 62 s on a 2-core CPU with a
cold compilation cache (iteration 0 done after 19 s, all 60 iterations after 32 s with 48% of the 32x32 grid
filled; the replay page takes most of the rest). Raise ``ITERATIONS`` and ``EPISODE_LENGTH`` for real runs; on a GPU use
a batch of 1024 or more.

Run: ``python examples/map_elites_brax.py``. Writes ``walker_archive.png``, ``walker_metrics.png`` and
``walker_best.html`` (the best elite's episode, a self-contained page that works offline; the elite runs
again alone, so on this chaotic task its replayed return may differ from its archived fitness) in the
current folder.
"""

import time

import jax
import matplotlib

from qd.parallel import use_cpu_cores

use_cpu_cores()  # one JAX CPU device per core; must come before JAX computes anything
matplotlib.use("Agg")

from emitters import IsoLineEmitter
from qd import GridArchive, MAPElites
from qd.plotting import plot_archive, plot_metrics
from qd.tasks.brax import make_task, replay_html

BATCH_SIZE, ITERATIONS, EPISODE_LENGTH = 128, 60, 100

task = make_task("walker2d_uni", episode_length=EPISODE_LENGTH, hidden_sizes=(32, 32), backend="spring")
k_init, k_run = jax.random.split(jax.random.key(0))
initial = task.initial_genotypes(k_init, BATCH_SIZE)  # MLP parameter pytrees, leading axis BATCH_SIZE

lower, upper = task.descriptor_bounds
one_policy = jax.tree_util.tree_map(lambda x: x[0], initial)  # shapes of one genotype, for the archive
archive = GridArchive.create(one_policy, resolution=(32, 32), lower=lower, upper=upper, qd_offset=task.qd_offset)
# Policy parameters are unbounded: no clipping. Sigmas as in QDax's Brax examples.
emitter = IsoLineEmitter(batch_size=BATCH_SIZE, iso_sigma=0.005, line_sigma=0.05)
# devices="all": each batch of rollouts is split over every device (on a CPU, one per core; see qd.parallel).
algorithm = MAPElites(emitter, task.evaluate, compiler_options=task.compiler_options, devices="all")

start = time.perf_counter()
# The initial batch has the emitter's batch size, so it waits in the state: the first iteration of `run`
# evaluates it, in the same compiled program as every later iteration (the rollout compiles once).
state, _ = algorithm.init(archive, initial, k_run)


def report(state, metrics):
    if int(state.iteration) % 10:
        return
    print(f"iteration {int(state.iteration):4d}  evaluations {int(state.num_evaluations):6d}  "
          f"coverage {metrics['coverage'][-1]:6.1%}  QD-score {metrics['qd_score'][-1]:9.1f}  "
          f"best {metrics['max_fitness'][-1]:7.1f}  ({time.perf_counter() - start:.0f} s)")


# One compiled iteration per call: a rollout batch takes far longer than a host call, and with chunks of
# one iteration a single program runs them all, iteration 0 (the initial batch) included. `report` prints every 10th.
state, metrics = algorithm.run(state, num_iterations=ITERATIONS, chunk_size=1, callback=report)

plot_archive(state.archive, descriptor_names=task.descriptor_names).figure.savefig("walker_archive.png", dpi=120)
plot_metrics(metrics).savefig("walker_metrics.png", dpi=120)

best = state.archive.best()
best_policy = jax.tree_util.tree_map(lambda x: x[0], best.genotypes)  # drop the batch axis of size 1
print(f"best elite: fitness {float(best.fitnesses[0]):.1f}, feet contact {best.descriptors[0].tolist()}")
replay_html(task, best_policy, path="walker_best.html")
print("wrote walker_archive.png, walker_metrics.png and walker_best.html")
