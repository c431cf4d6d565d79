"""MAP-Elites with iso+line variation on the 100-joint planar arm, then plots.

Run: ``python examples/map_elites_arm.py`` (about 10 s on a 2-core CPU). Writes ``arm_archive.png`` and
``arm_metrics.png`` in the current folder.
"""

import jax
import jax.numpy as jnp
import matplotlib

matplotlib.use("Agg")

from emitters import IsoLineEmitter
from qd import Arm, GridArchive, MAPElites
from qd.plotting import plot_archive, plot_metrics

task = Arm(num_joints=100)
archive = GridArchive.create(
    jnp.zeros(task.num_joints), resolution=(100, 100), lower=(0.0, 0.0), upper=(1.0, 1.0), qd_offset=task.qd_offset
)
emitter = IsoLineEmitter(batch_size=1024, iso_sigma=0.005, line_sigma=0.05, clip=task.genotype_bounds)
algorithm = MAPElites(emitter, task.evaluate)

k_init, k_run = jax.random.split(jax.random.key(42))
state, _ = algorithm.init(archive, task.initial_genotypes(k_init, 1024), k_run)


def report(state, metrics):
    print(f"iteration {int(state.iteration):4d}  coverage {metrics['coverage'][-1]:.1%}  "
          f"QD-score {metrics['qd_score'][-1]:.1f}  best {metrics['max_fitness'][-1]:.4f}")


state, metrics = algorithm.run(state, num_iterations=300, chunk_size=50, callback=report)

best = state.archive.best()
print("best elite: fitness", float(best.fitnesses[0]), "end effector at", best.descriptors[0].tolist())
plot_archive(state.archive, descriptor_names=task.descriptor_names).figure.savefig("arm_archive.png", dpi=120)
plot_metrics(metrics).savefig("arm_metrics.png", dpi=120)
