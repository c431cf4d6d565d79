"""Two JAX CPU devices in every test process (set before JAX computes anything), so that the tests of
``qd.parallel`` and of runs with ``devices > 1`` run on any machine, as the `qd` command sets them up."""

import jax

jax.config.update("jax_num_cpu_devices", 2)
