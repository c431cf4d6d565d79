"""Watch a policy: one episode rendered as an HTML page with Brax's viewer (``brax.io.html``)."""

from __future__ import annotations

import os
from typing import Any, Optional

import jax
import numpy as np


def episode_states(task: Any, genotype: Any, key: Optional[jax.Array] = None) -> list:
    """The pipeline states ``s_0 .. s_n`` of one episode of ``genotype`` (one policy, no batch axis),
    where ``n`` is its number of valid steps (the episode stops where the robot fell)."""
    # The task's XLA options (see qd.xla_options) cut the compile time of the episode by a third.
    states, steps = jax.jit(task.episode, compiler_options=getattr(task, "compiler_options", None))(genotype, key)
    states, steps = jax.device_get((states.pipeline_state, steps))
    return [jax.tree_util.tree_map(lambda x: x[i], states) for i in range(int(steps) + 1)]


def replay_html(task: Any, genotype: Any, path: Optional[str] = None, key: Optional[jax.Array] = None,
                height: int = 480) -> str:
    """Render one episode of ``genotype`` on ``task`` (a :class:`~qd.tasks.brax.BraxTask`) as HTML.

    Args:
        task: the task (its environment must be a Brax ``PipelineEnv``, which has ``sys``).
        genotype: one policy's parameter pytree (no leading batch axis).
        path: if given, the page is also written there (folders created).
        key: reset key, used only by tasks with ``stochastic_reset``.
        height: viewer height in pixels.

    Returns:
        The HTML text. The page loads Brax's viewer script from its CDN, so viewing it needs a network
        connection.

    Raises:
        ValueError: the genotype has a batch axis or does not fit the task's policy.
    """
    from brax.io import html

    template = task.genotype_template()
    leaves, t_leaves = jax.tree_util.tree_leaves(genotype), jax.tree_util.tree_leaves(template)
    if len(leaves) != len(t_leaves) or any(np.shape(a) != t.shape for a, t in zip(leaves, t_leaves)):
        raise ValueError(
            f"replay_html expects one {task.name} policy (no batch axis); got leaf shapes "
            f"{[np.shape(a) for a in leaves]}"
        )
    states = episode_states(task, genotype, key)
    page = html.render(task.env.sys, states, height=height, colab=False)
    if path is not None:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        with open(path, "w") as f:
            f.write(page)
    return page
