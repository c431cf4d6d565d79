"""XLA compiler options a task can ask for the programs that evaluate it (``jax.jit(compiler_options=...)``).

Algorithms take ``compiler_options`` and pass them to the ``jax.jit`` of their iteration programs; the
runner passes the task's ``compiler_options`` attribute when it has one. They are per program, so nothing
global changes for the rest of a user's JAX code.
"""

from __future__ import annotations

from typing import Dict, Optional

import jax

# XLA:CPU's fusion emitters (on by default in current jaxlib) doubled the compile time of a Brax rollout
# program and did not make it faster: walker2d, spring, batch 128, 100 steps on a 2-core CPU compiled in
# 28-32 s of CPU time with them and 13-16 s without, and ran in 0.57-0.59 s vs 0.55 s per batch. For the
# arm's MAP-Elites loop they are worth keeping (12% faster iterations), hence a per-task choice.
CPU_FAST_COMPILE = {"xla_cpu_use_fusion_emitters": False}


def fast_compile_options() -> Optional[Dict[str, bool]]:
    """:data:`CPU_FAST_COMPILE` when JAX's default backend is the CPU, else None (no options)."""
    return dict(CPU_FAST_COMPILE) if jax.default_backend() == "cpu" else None
