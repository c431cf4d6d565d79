"""Watch a policy: one episode rendered as a self-contained HTML page with Brax's viewer.

The page works offline, from ``file://``: Brax's viewer modules (read from the installed ``brax``
package, ``brax/visualizer/js``, Apache-2.0) and the libraries they import (three.js and lil-gui, vendored
in ``qd/tasks/brax/viewer/`` with their licences; see the README there) are inlined as ``data:`` URLs of
an import map, and the episode as compressed JSON (Brax's ``brax.io.json`` format). Until the viewer has
started, the page shows a message saying what it needs (JavaScript, import maps, WebGL), and any error.

What is reproducible (and what is not):

- A whole run, from its seed and configuration, on the same software and hardware: yes, bit for bit.
- One elite re-evaluated on its own (as here) or in another batch: not on chaotic tasks. Brax locomotion
  is chaotic in float32, and the archive scored the elite inside a ``vmap``-ed batch, whose vectorised
  kernels round differently from the single-episode program replayed here; rounding differences of
  ``1e-7`` grow to a different gait within a few hundred steps (an ``ant_uni`` policy scored 30.3 in a
  batch of 8 and 4.8 alone, same key). So the page and :func:`replay_html`'s callers show the archived
  score next to the replayed return and say when they differ (:func:`scores_agree`).
- With the task option ``batch_invariant=True`` (``qd run --task-option batch_invariant=true``) the run
  scores candidates one after the other with the same single-episode program that is replayed here: an
  elite's replayed return then equals its archived score exactly, at 1.6-2.2x the evaluation time on a
  2-core CPU (far more on accelerators; see :func:`qd.tasks.brax.make_task`).
"""

from __future__ import annotations

import base64
import dataclasses
import html as html_lib
import json
import math
import os
import re
import zlib
from importlib import resources
from typing import Any, Dict, List, Optional

import jax
import jax.numpy as jnp
import numpy as np

# Relative tolerance of :func:`scores_agree` (with an absolute floor of SCORE_RTOL fitness units).
SCORE_RTOL = 1e-3

# Modules the page maps, in the order Brax's viewer imports them: specifier -> vendored file
# (qd/tasks/brax/viewer/, see its README) or, for "brax-viewer/...", a file of brax/visualizer/js.
VENDORED = {
    "three": "three.module.js",
    "three/addons/controls/OrbitControls.js": "OrbitControls.js",
    "lilgui": "lil-gui.esm.min.js",
}
BRAX_MODULES = ("animator.js", "selector.js", "system.js", "viewer.js")
# The library versions Brax's own page (brax/visualizer/index.html) imports; the vendored files are these.
VENDORED_VERSIONS = {"three": "0.150.1", "lil-gui": "0.18.0"}


@dataclasses.dataclass(frozen=True)
class Episode:
    """One replayed episode.

    Attributes:
        states: the Brax pipeline states ``s_0 .. s_n`` (host arrays, no batch axis), ``n = steps``.
        steps: ``n``, the number of valid steps (the episode stops where the robot fell).
        fitness: the replayed return: the task's per-step fitness term (``task.step_reward``, the one
            ``evaluate`` sums) summed over the valid steps, in the task's reward units.
    """

    states: List[Any]
    steps: int
    fitness: float


def _check_genotype(task: Any, genotype: Any) -> None:
    template = task.genotype_template()
    leaves, t_leaves = jax.tree_util.tree_leaves(genotype), jax.tree_util.tree_leaves(template)
    if len(leaves) != len(t_leaves) or any(np.shape(a) != t.shape for a, t in zip(leaves, t_leaves)):
        raise ValueError(
            f"replay expects one {task.name} policy (no batch axis); got leaf shapes "
            f"{[np.shape(a) for a in leaves]}, expected {[t.shape for t in t_leaves]}"
        )


def replay_episode(task: Any, genotype: Any, key: Optional[jax.Array] = None) -> Episode:
    """Run one episode of ``genotype`` (one policy, no batch axis) alone and keep every state.

    The return is computed as ``task.evaluate`` does (same ``step_reward``, same done mask: step ``t``
    counts if no earlier state was done), but in a single-episode program, so on chaotic tasks it can differ
    from the score the same policy got inside a batch (see the module docstring). With the task's
    ``batch_invariant`` option the return is computed by the very function ``evaluate`` maps over the
    candidates (``task.episode_stats``), and equals the archived fitness bitwise (same start state).

    Args:
        task: a :class:`~qd.tasks.brax.BraxTask`.
        genotype: one policy's parameter pytree (no leading batch axis).
        key: reset key, used only by tasks with ``stochastic_reset``.

    Raises:
        ValueError: the genotype has a batch axis or does not fit the task's policy.
    """
    _check_genotype(task, genotype)

    def run(genotype, key):
        states, steps = task.episode(genotype, key)
        after = jax.tree_util.tree_map(lambda x: x[1:], states)  # s_1 .. s_T: the step t reward is read on s_{t+1}
        rewards = jax.vmap(task.step_reward)(after)
        valid = jnp.arange(rewards.shape[0]) < steps

        def add(total, x):  # summed in time order, as evaluate's running sum
            return total + jnp.where(x[1], x[0], 0.0), None

        if getattr(task, "batch_invariant", False):  # the single-episode function evaluate maps over
            fitness = task.episode_stats(genotype, key).fitness
        else:
            fitness, _ = jax.lax.scan(add, jnp.zeros((), jnp.float32), (rewards.astype(jnp.float32), valid))
        return states.pipeline_state, steps, fitness

    # The task's XLA options (see qd.xla_options) cut the compile time of the episode by a third.
    states, steps, fitness = jax.device_get(
        jax.jit(run, compiler_options=getattr(task, "compiler_options", None))(genotype, key)
    )
    states = [jax.tree_util.tree_map(lambda x: x[i], states) for i in range(int(steps) + 1)]
    return Episode(states=states, steps=int(steps), fitness=float(fitness))


def episode_states(task: Any, genotype: Any, key: Optional[jax.Array] = None) -> list:
    """The pipeline states ``s_0 .. s_n`` of one episode of ``genotype`` (see :func:`replay_episode`)."""
    return replay_episode(task, genotype, key).states


# ---------------------------------------------------------------------------------------------------- #
def scores_agree(archived: float, replayed: float, rtol: float = SCORE_RTOL) -> bool:
    """Whether a replayed return matches the archived fitness:
    ``|replayed - archived| <= rtol * max(|archived|, |replayed|, 1)`` (fitness units; the floor of 1 keeps
    scores near zero from flagging rounding noise). Non-finite scores agree only if equal.

    The default ``rtol = 1e-3`` is far above float32 rounding of a non-chaotic episode (``1e-6`` relative)
    and far below what chaos does (differences of order one).

    Batch invariance (``benchmarks/brax_batch_invariance.py``): XLA's CPU fast-math is already off; what
    changes the rounding is ``vmap`` itself (batched kernels). Scoring candidates one after the other
    (``lax.map`` of the single-episode rollout) is bitwise independent of the batch size, and matches a
    single-episode replay, but costs the vectorisation: on ``hopper_uni`` (300 steps, MLP (64, 64), 2-core
    CPU) 1.6-1.7x the time at batch 8, 1.6-2.1x at 64, 2.2-3.1x at 256, and far more on accelerators.
    Brax tasks offer it as the option ``batch_invariant=True``; without it, this check is what tells the
    user.
    """
    a, r = float(archived), float(replayed)
    if not (math.isfinite(a) and math.isfinite(r)):
        return a == r or (math.isnan(a) and math.isnan(r))
    return abs(r - a) <= rtol * max(abs(a), abs(r), 1.0)


def score_line(archived: Optional[float], replayed: float, rtol: float = SCORE_RTOL) -> str:
    """One line comparing the archived fitness with the replayed return, e.g.
    ``"archived fitness 30.3, replayed 4.8: they differ (more than 0.1%) ..."``; without ``archived``,
    just the replayed return."""
    if archived is None:
        return f"replayed return {replayed:.4g}"
    head = f"archived fitness {float(archived):.4g}, replayed {float(replayed):.4g}"
    if scores_agree(archived, replayed, rtol):
        return f"{head} (agree within {rtol:.1%})"
    return (f"{head}: they differ by more than {rtol:.1%} (float32 physics is chaotic and a replay alone "
            f"rounds differently from the archive's batch; the run itself is reproducible)")


# ---------------------------------------------------------------------------------------------------- #
def _data_url(source: str) -> str:
    return "data:text/javascript;base64," + base64.b64encode(source.encode("utf-8")).decode("ascii")


def _brax_viewer_dir():
    return resources.files("brax") / "visualizer" / "js"


def import_map() -> Dict[str, Dict[str, str]]:
    """The page's import map: every module Brax's viewer imports, as a ``data:`` URL.

    Brax's viewer imports its own files by relative paths (``./system.js``), which cannot be resolved
    from a ``data:`` URL, so they are rewritten to bare ``brax-viewer/...`` specifiers mapped here.

    Raises:
        FileNotFoundError: the installed brax has no ``visualizer/js`` (or a vendored file is missing).
    """
    viewer_dir = resources.files("qd.tasks.brax") / "viewer"
    imports = {spec: _data_url((viewer_dir / name).read_text(encoding="utf-8")) for spec, name in VENDORED.items()}
    brax_dir = _brax_viewer_dir()
    for name in BRAX_MODULES:
        path = brax_dir / name
        if not path.is_file():
            raise FileNotFoundError(f"the installed brax has no viewer script {path}")
        source = re.sub(r"""(from\s+['"])\./""", r"\1brax-viewer/", path.read_text(encoding="utf-8"))
        imports[f"brax-viewer/{name}"] = _data_url(source)
    return {"imports": imports}


_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title}</title>
<style>
  body {{ margin: 0; padding: 0; font-family: sans-serif; }}
  #qd-info {{ padding: 6px 260px 6px 10px; font-size: 14px; background: #f2f2f2; border-bottom: 1px solid #ccc; }}
  #qd-info .qd-differ {{ color: #a00000; }}
  #qd-message {{ padding: 24px; font-size: 16px; color: #a00000; }}
  #qd-error {{ white-space: pre-wrap; }}
  #brax-viewer {{ height: {height}px; width: 100vw; overflow: hidden; }}
</style>
</head>
<body data-qd-status="loading">
<div id="qd-info">{info}</div>
<div id="qd-message">The Brax viewer has not started. This page draws with JavaScript (ES modules and import
maps: Chrome or Edge 89+, Firefox 108+, Safari 16.4+) and WebGL, and needs no network. If this message stays,
enable JavaScript or open the file in such a browser.<div id="qd-error"></div></div>
<div id="brax-viewer"></div>
<script>
  (function () {{
    function show(text) {{
      document.body.setAttribute("data-qd-status", "error");
      document.getElementById("qd-message").style.display = "block";
      document.getElementById("brax-viewer").style.display = "none";
      document.getElementById("qd-error").textContent += "\\nError: " + text;
    }}
    window.qdShowError = show;
    window.addEventListener("error", function (e) {{
      show(e.message || ("could not load " + ((e.target && e.target.src) || "a script")));
    }}, true);
    window.addEventListener("unhandledrejection", function (e) {{ show(String(e.reason)); }});
  }})();
</script>
<script type="importmap">
{import_map}
</script>
<script type="application/octet-stream" id="qd-system">{system}</script>
<script type="module">
  import {{Viewer}} from "brax-viewer/viewer.js";
  try {{
    // The episode: zlib-compressed, base64-encoded brax.io.json text.
    const packed = Uint8Array.from(atob(document.getElementById("qd-system").textContent.trim()), c => c.charCodeAt(0));
    const stream = new Blob([packed]).stream().pipeThrough(new DecompressionStream("deflate"));
    const system = JSON.parse(await new Response(stream).text());
    window.qdViewer = new Viewer(document.getElementById("brax-viewer"), system);
    requestAnimationFrame(() => requestAnimationFrame(() => {{
      if (document.body.getAttribute("data-qd-status") !== "error") {{
        document.getElementById("qd-message").style.display = "none";
        document.body.setAttribute("data-qd-status", "drawn");
      }}
    }}));
  }} catch (e) {{
    window.qdShowError(e && e.stack ? e.stack : String(e));
  }}
</script>
</body>
</html>
"""


def render_page(task: Any, episode: Episode, archived_fitness: Optional[float] = None, label: str = "",
                height: int = 480) -> str:
    """The self-contained HTML page of ``episode`` (no network: see the module docstring).

    Args:
        task: the task the episode ran on (its environment must be a Brax ``PipelineEnv``, with ``sys``).
        episode: from :func:`replay_episode`.
        archived_fitness: the score the archive holds for this policy, shown next to the replayed return
            with a warning when they differ (:func:`score_line`); None shows only the replayed return.
        label: shown first in the page's header line (e.g. ``"cell 12"``).
        height: viewer height in pixels.
    """
    from brax.io import json as brax_json

    system = base64.b64encode(zlib.compress(brax_json.dumps(task.env.sys, episode.states).encode("utf-8"))).decode()
    line = score_line(archived_fitness, episode.fitness)
    differ = archived_fitness is not None and not scores_agree(archived_fitness, episode.fitness)
    text = ", ".join(s for s in (task.name, label, f"{episode.steps} steps") if s)
    info = (f"{html_lib.escape(text)}: <span class=\"{'qd-differ' if differ else 'qd-agree'}\">"
            f"{html_lib.escape(line)}</span>")
    # "</" cannot end the import map's script early: the map is JSON of base64 strings.
    return _PAGE.format(title=html_lib.escape(f"{text} - qd replay"), height=int(height), info=info,
                        import_map=json.dumps(import_map(), indent=1), system=system)


def replay_html(task: Any, genotype: Any, path: Optional[str] = None, key: Optional[jax.Array] = None,
                height: int = 480, archived_fitness: Optional[float] = None, label: str = "") -> str:
    """Render one episode of ``genotype`` on ``task`` (a :class:`~qd.tasks.brax.BraxTask`) as HTML.

    The episode is re-run alone (:func:`replay_episode`): on chaotic tasks (Brax locomotion in float32) its
    return can differ from the fitness the archive recorded for the same policy inside a batch; pass
    ``archived_fitness`` to show both and flag the difference. A whole run is reproducible from its seed and
    config; one elite re-evaluated outside its batch is not (module docstring).

    Args:
        task: the task (its environment must be a Brax ``PipelineEnv``, which has ``sys``).
        genotype: one policy's parameter pytree (no leading batch axis).
        path: if given, the page is also written there (folders created).
        key: reset key, used only by tasks with ``stochastic_reset``.
        height: viewer height in pixels.
        archived_fitness: the archive's score of this policy, shown next to the replayed return.
        label: text shown in the page's header (e.g. ``"cell 12"``).

    Returns:
        The HTML text: one self-contained file (scripts inlined, about 1.7 MB plus the episode) that
        works offline from ``file://``.

    Raises:
        ValueError: the genotype has a batch axis or does not fit the task's policy.
        FileNotFoundError: the installed brax lacks its viewer scripts.
    """
    page = render_page(task, replay_episode(task, genotype, key), archived_fitness, label, height)
    if path is not None:
        write_page(page, path)
    return page


def write_page(page: str, path: str) -> None:
    """Write ``page`` to ``path`` (UTF-8), creating its folders."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(page)
