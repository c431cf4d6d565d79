"""SERENE (Paolo, Coninx, Doncieux & Laflaquière, GECCO 2021, "Sparse reward exploration via novelty
search and emitters"): discover reward areas by novelty search, exploit each one with an emitter.

The budget (in evaluations) is spent in chunks (1000 by default), each on one of two phases chosen by a
:class:`~qd.algorithms.phase_schedulers.PhaseScheduler` (alternating by default, SERENE's own loop):

**Exploration** (novelty search, :class:`~qd.algorithms.novelty_search.NoveltySearchAlgorithm`): generations
of ``P * c`` offspring (100 parents x 2 = 200) until the chunk is spent (5 generations; the initial population
of 100 comes before the first chunk, so the first one costs 1100). The novelty reference set is ``P u O u A
u R``: the reward archive ``R`` is in it, which pushes the search away from reward areas already found. After
each generation every rewarding agent of ``P u O`` (reward > 0) not seen before becomes a **candidate
emitter** (``R`` already holds it), with initial step size ``sigma0`` = its genotype distance to the nearest
other member of ``P u O``, divided by 3 (0.05 when that is 0).

**Exploitation** (one emitter step per iteration):

1. *Bootstrap.* The candidates are ordered once per chunk by the novelty of their descriptor against ``R``
   (most novel first: new reward areas go first). While more than a third of the chunk is left, the next
   candidate gets an emitter slot and runs its initial population plus ``bootstrap_steps`` (5) steps
   (6 + 5 x 12 = 66 evaluations for FIT); then ``improvement = max(mean(values[-3:]) - mean(values[:3]), 0)``
   over the population rewards of its steps. It becomes an active emitter if the improvement is positive,
   and is dropped otherwise.
2. *Run.* The active emitter to run is drawn uniformly from the first Pareto front of (novelty of its
   ancestor against ``R``, improvement) (NSGA-II's sort, :func:`qd.selection.non_dominated_sort`); it runs
   until the chunk is spent or it terminates, then another is chosen. At the end of the chunk the
   improvement of the emitters still alive is re-estimated (baseline still ``values[:3]``).
3. *Termination*: the emitter's own criterion (CMA-ES's), an optional step cap, or **stagnation**: once it
   has made more steps than the window ``H = int(20 D / 6 + 120)`` (``D`` genes), with ``W`` its last ``H``
   steps' population rewards, it stops if ``median(W[:20]) >= median(W[-20:])`` or ``max(W[:20]) >=
   max(W[-20:])``.
4. Every step: the **reward archive** gets, at the emitter's first archival, its best proposal if rewarding,
   and after that every proposal whose reward beats the best it archived so far; proposals more novel
   (against ``P u O u A u R``) than the emitter's most novel agent so far are its *novelty candidates*. When
   it terminates, 5 of them drawn uniformly go to the novelty archive ``A``, and its ancestor goes to ``R``
   again (as in the original, ``R`` holds duplicates).

Two execution modes (``mode``):

- ``"faithful"``: one emitter at a time, as in the paper (an exploitation iteration evaluates 12 agents).
- ``"parallel"`` (**our variant**): every active emitter advances in the same iteration, one vmapped step
  over the ``emitter_slots`` slots with masks (an iteration evaluates ``slots x 12`` rows, the unused ones
  as padding, not counted); bootstrapping fills every free slot at once. The Pareto choice is not needed
  (all active emitters run). With one slot it is the faithful algorithm exactly.

Departures from the original code, each deliberate:

- Emitters live in ``emitter_slots`` fixed slots (the original's dict is unbounded): while every slot is
  taken, no candidate is bootstrapped (they wait in the candidate buffer). The candidate buffer holds
  ``candidate_capacity`` agents, a ring (the oldest is overwritten, counted in ``candidate_overflow``).
- An emitter's novelty candidates are kept as a uniform reservoir sample of 5 (the original keeps the list
  and draws 5 at termination: the same distribution), added to ``A`` at termination rather than at the end
  of the chunk.
- Novelty of emitter proposals is computed against the current ``P u O u A u R`` (the original snapshots it
  at the start of the chunk), and without dropping a neighbour (the original drops the nearest one,
  assuming the query is in the set, which a proposal is not). Candidate and ancestor novelty against ``R``
  drop the nearest neighbour, as in the original, where it is the agent's own copy in ``R``.
- A bootstrap always runs to its end, past the end of the chunk if need be (as in the original, whose
  chunk counter goes negative); in parallel mode that is every candidate loaded together.
- An exploitation chunk with no candidate and no active emitter costs nothing, and the scheduler is asked
  again (SERENE's loop does the same); the budget is checked after every iteration, so a run ends within
  one iteration of it (the original finishes its chunk).

State layout: ``P`` parents, ``O = P c`` offspring, ``S`` emitter slots, ``K`` candidate buffer slots, ``n``
emitter population, ``H`` stagnation window, ``D`` genes (genotypes are ``(N, D)`` float arrays), ``d``
descriptor dimensions, ``A`` reward areas. :class:`Serene` is the algorithm on the
:class:`~qd.algorithms.driver.Driver` (as a phased algorithm: iterations of 200 or of one emitter step).
"""

from __future__ import annotations

import math
from typing import Any, Callable, Dict, Optional, Sequence, Tuple

import jax
import jax.numpy as jnp
from flax import struct

from qd.algorithms.checks import check_clip, check_positive, check_positive_int
from qd.algorithms.driver import Driver, Phase
from qd.algorithms.novelty_search import NoveltySearchAlgorithm, NoveltySearchState, novelty_archive_metrics
from qd.algorithms.phase_schedulers import PhaseScheduler, PhaseSchedulerState
from qd.archives.base import AddResult, Archive
from qd.metrics import GroundTruth
from qd.novelty import DEFAULT_K, knn_novelty, squared_distances
from qd.selection import non_dominated_sort, uniform_selection
from qd.tasks.base import Evaluation

EXPLORE, EXPLOIT, DONE = 0, 1, 2
PHASE_NAMES = ("explore", "exploit", "done")
BOOTSTRAP, RUN = 0, 1
EMPTY, BOOTSTRAPPING, ACTIVE = 0, 1, 2
MODES = ("faithful", "parallel")
RESERVOIR = 5  # novelty candidates an emitter gives the novelty archive when it terminates
STAGNATION_SPAN = 20  # steps compared at each end of the stagnation window


def stagnation_window(genome_size: int) -> int:
    """SERENE's stagnation window ``int(20 D / 6 + 120)`` steps (433 for Curling's 94 genes)."""
    return int(20 * int(genome_size) / 6 + 120)


@struct.dataclass
class Agents:
    """A fixed store of agents (leading axis ``N``, or ``(S, N)`` per slot).

    Attributes:
        genotypes: ``(N, D)``.
        descriptors: ``(N, d)``.
        fitnesses: ``(N,)`` rewards.
        extras: the extras the novelty archive stores (per agent), or None.
    """

    genotypes: jax.Array
    descriptors: jax.Array
    fitnesses: jax.Array
    extras: Any = None


def _take(tree: Any, index: jax.Array) -> Any:
    return jax.tree_util.tree_map(lambda x: x[index], tree)


def _put(tree: Any, index: jax.Array, values: Any) -> Any:
    """``tree[index] = values`` leaf by leaf (``index`` out of range: dropped)."""
    return jax.tree_util.tree_map(lambda x, v: x.at[index].set(v.astype(x.dtype), mode="drop"), tree, values)


def _where(mask: jax.Array, new: Any, old: Any) -> Any:
    """Leaf-wise select along the leading axes of ``mask``."""
    def pick(a, b):
        m = mask.reshape(mask.shape + (1,) * (a.ndim - mask.ndim))
        return jnp.where(m, a, b)
    return jax.tree_util.tree_map(pick, new, old)


def _concat(*trees: Any) -> Any:
    return jax.tree_util.tree_map(lambda *xs: jnp.concatenate(xs), *trees)


@struct.dataclass
class Candidates:
    """The candidate emitters (a ring of ``K`` slots).

    Attributes:
        agents: the rewarding agents (ancestors-to-be), :class:`Agents` ``(K, ...)``.
        sigma: ``(K,)`` their initial step sizes.
        area: ``(K,) int32`` their reward areas (``-1`` unknown).
        valid: ``(K,) bool``.
        priority: ``(K,) float32`` novelty against ``R`` when the current exploitation chunk began.
        next: ``() int32`` the ring's write position.
        overflow: ``() int32`` candidates overwritten before being bootstrapped.
    """

    agents: Agents
    sigma: jax.Array
    area: jax.Array
    valid: jax.Array
    priority: jax.Array
    next: jax.Array
    overflow: jax.Array


@struct.dataclass
class EmitterSlots:
    """``S`` emitter slots (every field has leading axis ``S``).

    Attributes:
        emitter: the local emitters' states.
        status: ``int32`` :data:`EMPTY`, :data:`BOOTSTRAPPING` or :data:`ACTIVE`.
        steps: ``int32`` steps made (the initial population is step 0): ``len(values)``.
        history: ``(S, H, n)`` ring of the population rewards of the last ``H`` steps (``values``).
        baseline: mean population reward of the first 3 steps (summed over those made so far).
        improvement: the last improvement estimate.
        archived_max: best reward this emitter put in ``R`` (``-inf``: none yet).
        ancestor: :class:`Agents` ``(S, ...)``, the agent each emitter started from.
        area: ``int32`` the ancestor's reward area.
        most_novel: novelty of the emitter's most novel proposal so far (``-inf``: none).
        reservoir: :class:`Agents` ``(S, 5, ...)``, a uniform sample of its novelty candidates.
        seen: ``int32`` novelty candidates offered to the reservoir.
        evaluations: ``int32`` evaluations spent by each emitter.
    """

    emitter: Any
    status: jax.Array
    steps: jax.Array
    history: jax.Array
    baseline: jax.Array
    improvement: jax.Array
    archived_max: jax.Array
    ancestor: Agents
    area: jax.Array
    most_novel: jax.Array
    reservoir: Agents
    seen: jax.Array
    evaluations: jax.Array


@struct.dataclass
class SereneState:
    """SERENE's state (a pytree; every field is fixed-shape).

    Attributes:
        ns: the novelty search state (population ``P``, novelty archive ``A``, reward archive ``R``).
        flagged: ``(P,) bool`` parents already made candidates.
        population_area: ``(P,) int32`` the parents' reward areas (``-1``: none).
        population_extras: the parents' stored extras (None without).
        offspring: :class:`Agents` ``(O, ...)``, the last generation's offspring (``O`` of ``P u O``).
        offspring_valid: ``() bool`` whether a generation has run.
        candidates: :class:`Candidates`.
        slots: :class:`EmitterSlots`.
        scheduler: the chunk scheduler's statistics.
        phase: ``() int32`` the next iteration's phase (:data:`EXPLORE`, :data:`EXPLOIT`, :data:`DONE`).
        stage: ``() int32`` within an exploitation chunk: :data:`BOOTSTRAP` or :data:`RUN`.
        chunk_left: ``() int32`` evaluations left in the current chunk.
        chosen: ``() int32`` the slot the faithful mode runs (``-1``: none chosen).
        running: ``(S,) bool`` the slots the next exploitation iteration steps.
        emitters_at_chunk_start: ``() int32`` candidates + active emitters when the chunk began.
        spent, explore_evaluations, exploit_evaluations, bootstrap_evaluations: ``() int32`` counters.
        area_evaluations: ``(A,) int32`` emitter evaluations per reward area (the ancestor's).
        explore_chunks, exploit_chunks: ``() int32`` chunks begun of each phase.
        candidates_found, emitters_promoted, candidates_dropped, emitters_terminated: ``() int32``.
    """

    ns: NoveltySearchState
    flagged: jax.Array
    population_area: jax.Array
    population_extras: Any
    offspring: Agents
    offspring_valid: jax.Array
    candidates: Candidates
    slots: EmitterSlots
    scheduler: PhaseSchedulerState
    phase: jax.Array
    stage: jax.Array
    chunk_left: jax.Array
    chosen: jax.Array
    running: jax.Array
    emitters_at_chunk_start: jax.Array
    spent: jax.Array
    explore_evaluations: jax.Array
    exploit_evaluations: jax.Array
    bootstrap_evaluations: jax.Array
    area_evaluations: jax.Array
    explore_chunks: jax.Array
    exploit_chunks: jax.Array
    candidates_found: jax.Array
    emitters_promoted: jax.Array
    candidates_dropped: jax.Array
    emitters_terminated: jax.Array

    @property
    def archive(self) -> Archive:
        """The novelty archive ``A``."""
        return self.ns.archive

    @property
    def reward_archive(self) -> Archive:
        """The reward archive ``R``."""
        return self.ns.reward_archive


def _i32(x) -> jax.Array:
    return jnp.asarray(x, jnp.int32)


class SereneAlgorithm:
    """SERENE as a phased algorithm of the driver protocol (see the module docstring).

    Args:
        emitter: a local emitter (``emitters.FitnessEmitter``, ``emitters.CMAESEmitter``,
            ``emitters.NoveltyEmitter``: ``init_at``, ``ask``, ``tell``, ``num_asked``,
            ``population_rewards``, ``should_stop``, ``batch_size``, ``population_size``).
        budget: total evaluations of the run, the initial population included.
        chunk_evaluations: evaluations per chunk (1000; not the driver's ``chunk_size``, iterations per compiled program).
        mode: ``"faithful"`` or ``"parallel"``.
        emitter_slots: ``S``, emitters alive at once (both modes).
        candidate_capacity: ``K``, candidate buffer slots.
        scheduler: a :class:`PhaseScheduler` (default alternating).
        bootstrap_steps: emitter steps after the initial population in a candidate's bootstrap (5).
        bootstrap_fraction: the bootstrap stops when at most this fraction of the chunk is left (1/3).
        max_emitter_steps: cap on an emitter's steps (0: none, SERENE's default).
        window: stagnation window ``H`` (None: :func:`stagnation_window` of the genome size).
        num_reward_areas: ``A``, for the per-area evaluation counts.
        offspring_per_parent, sigma, genotype_bounds, num_neighbors: novelty search's (2, 0.05, (-5, 5), 15).
        sigma_fallback: an emitter's ``sigma0`` when the nearest-neighbour distance is 0 (0.05).

    Raises:
        ValueError: a bad mode, a non-positive count or size, a bootstrap
            fraction outside ``[0, 1)``, a window shorter than 20 steps.
        TypeError: ``emitter`` lacks a local emitter's methods.
    """

    def __init__(self, emitter: Any, budget: int, chunk_evaluations: int = 1000, mode: str = "faithful",
                 emitter_slots: int = 32, candidate_capacity: int = 256, scheduler: Optional[PhaseScheduler] = None,
                 bootstrap_steps: int = 5, bootstrap_fraction: float = 1.0 / 3.0, max_emitter_steps: int = 0,
                 window: Optional[int] = None, num_reward_areas: int = 0, offspring_per_parent: int = 2,
                 sigma: float = 0.05, genotype_bounds: Optional[Tuple[float, float]] = (-5.0, 5.0),
                 num_neighbors: int = DEFAULT_K, sigma_fallback: float = 0.05):
        for attr in ("init_at", "ask", "tell", "num_asked", "population_rewards", "should_stop"):
            if not callable(getattr(emitter, attr, None)):
                raise TypeError(f"SERENE: the emitter {emitter!r} has no {attr!r} method (a local emitter, emitters.local)")
        if mode not in MODES:
            raise ValueError(f"SERENE: mode must be one of {MODES}; got {mode!r}")
        self.emitter = emitter
        self.mode = mode
        self.budget = check_positive_int("SERENE: budget", budget)
        self.chunk_evaluations = check_positive_int("SERENE: chunk_evaluations", chunk_evaluations)
        self.emitter_slots = check_positive_int("SERENE: emitter_slots", emitter_slots)
        self.candidate_capacity = check_positive_int("SERENE: candidate_capacity", candidate_capacity)
        self.bootstrap_steps = check_positive_int("SERENE: bootstrap_steps", bootstrap_steps)
        if not 0.0 <= float(bootstrap_fraction) < 1.0:
            raise ValueError(f"SERENE: bootstrap_fraction must lie in [0, 1); got {bootstrap_fraction!r}")
        self.bootstrap_fraction = float(bootstrap_fraction)
        if int(max_emitter_steps) != max_emitter_steps or max_emitter_steps < 0:
            raise ValueError(f"SERENE: max_emitter_steps must be an integer >= 0 (0: no cap); got {max_emitter_steps!r}")
        self.max_emitter_steps = int(max_emitter_steps)
        if window is not None and (int(window) != window or window < STAGNATION_SPAN):
            raise ValueError(f"SERENE: window must be an integer >= {STAGNATION_SPAN}; got {window!r}")
        self.window = None if window is None else int(window)
        if int(num_reward_areas) != num_reward_areas or num_reward_areas < 0:
            raise ValueError(f"SERENE: num_reward_areas must be an integer >= 0; got {num_reward_areas!r}")
        self.num_reward_areas = int(num_reward_areas)
        self.sigma_fallback = check_positive("SERENE: sigma_fallback", sigma_fallback)
        self.scheduler = PhaseScheduler() if scheduler is None else scheduler
        self.ns = NoveltySearchAlgorithm(offspring_per_parent, sigma, genotype_bounds, num_neighbors)
        self.num_neighbors = self.ns.num_neighbors
        self.phases = (
            Phase("explore", self._ask_explore, self._tell_explore, explores=True),
            Phase("exploit", self._ask_exploit, self._tell_exploit, explores=False),
            Phase("done"),
        )

    # ----------------------------------------------------------------------------------------- #
    # Setup
    # ----------------------------------------------------------------------------------------- #
    def _window(self, genome_size: int) -> int:
        return stagnation_window(genome_size) if self.window is None else self.window

    def init(self, key: jax.Array, archive: Archive, initial_genotypes: jax.Array,
             reward_archive: Archive) -> Tuple[SereneState, jax.Array]:
        """``(state, initial_genotypes)``: empty stores around the initial population ``(P, D)`` (evaluated
        by the driver, then :meth:`tell_initial`).

        Args:
            key: unused (the emitter slots start empty).
            archive: an empty novelty archive ``A`` (:class:`qd.UnstructuredArchive`, SERENE: 5 random per
                generation).
            initial_genotypes: ``(P, D)`` float genomes (SERENE: ``N(0, 1)`` clipped to ``[-5, 5]``).
            reward_archive: an empty :class:`qd.UnstructuredArchive` for ``R`` (policy ``"threshold"``,
                threshold 0: every rewarding agent offered is stored).

        Raises:
            ValueError: genotypes that are not one ``(P, D)`` float array; no reward archive.
        """
        g = initial_genotypes
        if not hasattr(g, "ndim") or g.ndim != 2 or not jnp.issubdtype(g.dtype, jnp.floating):
            raise ValueError("SERENE: genotypes must be one (P, D) float array (flat genomes)")
        if reward_archive is None:
            raise ValueError("SERENE: a reward archive is required (an empty qd.UnstructuredArchive)")
        p, dim = int(g.shape[0]), int(g.shape[1])
        o = p * self.ns.offspring_per_parent
        d = archive.descriptor_dim
        ns, _ = self.ns.init(key, archive, g, reward_archive)
        extras = None if archive.extras is None else archive.extras

        def agents(*lead):
            ex = None if extras is None else jax.tree_util.tree_map(lambda x: jnp.zeros(lead + x.shape[1:], x.dtype), extras)
            return Agents(jnp.zeros(lead + (dim,), g.dtype), jnp.zeros(lead + (d,), jnp.float32),
                          jnp.zeros(lead, jnp.float32), ex)

        s, k = self.emitter_slots, self.candidate_capacity
        template = jax.vmap(lambda a: self.emitter.init_at(jax.random.PRNGKey(0), a, 1.0))(jnp.zeros((s, dim), g.dtype))
        h, n = self._window(dim), int(self.emitter.population_size)
        slots = EmitterSlots(
            emitter=template, status=jnp.zeros((s,), jnp.int32), steps=jnp.zeros((s,), jnp.int32),
            history=jnp.zeros((s, h, n), jnp.float32), baseline=jnp.zeros((s,), jnp.float32),
            improvement=jnp.zeros((s,), jnp.float32), archived_max=jnp.full((s,), -jnp.inf, jnp.float32),
            ancestor=agents(s), area=jnp.full((s,), -1, jnp.int32), most_novel=jnp.full((s,), -jnp.inf, jnp.float32),
            reservoir=agents(s, RESERVOIR), seen=jnp.zeros((s,), jnp.int32), evaluations=jnp.zeros((s,), jnp.int32),
        )
        candidates = Candidates(agents=agents(k), sigma=jnp.zeros((k,), jnp.float32), area=jnp.full((k,), -1, jnp.int32),
                                valid=jnp.zeros((k,), bool), priority=jnp.zeros((k,), jnp.float32), next=_i32(0),
                                overflow=_i32(0))
        zero = _i32(0)
        state = SereneState(
            ns=ns, flagged=jnp.zeros((p,), bool), population_area=jnp.full((p,), -1, jnp.int32), population_extras=None if extras is None else agents(p).extras,
            offspring=agents(o), offspring_valid=jnp.zeros((), bool), candidates=candidates, slots=slots,
            scheduler=self.scheduler.init(), phase=_i32(EXPLORE), stage=_i32(BOOTSTRAP), chunk_left=_i32(self.chunk_evaluations),
            chosen=_i32(-1), running=jnp.zeros((s,), bool), emitters_at_chunk_start=zero, spent=zero,
            explore_evaluations=zero, exploit_evaluations=zero, bootstrap_evaluations=zero,
            area_evaluations=jnp.zeros((max(self.num_reward_areas, 1),), jnp.int32), explore_chunks=_i32(1),
            exploit_chunks=zero, candidates_found=zero, emitters_promoted=zero, candidates_dropped=zero,
            emitters_terminated=zero,
        )
        return state, g

    def _stored_extras(self, state: SereneState, evaluation: Evaluation) -> Any:
        archive = state.ns.archive
        if archive.extras is None:
            return None
        missing = [k for k in archive.extras if k not in (evaluation.extras or {})]
        if missing:
            raise ValueError(f"SERENE: the novelty archive stores extras {missing} that the evaluation does not return")
        return {k: evaluation.extras[k] for k in archive.extras}

    def tell_initial(self, state: SereneState, genotypes: jax.Array, evaluation: Evaluation, key: jax.Array) -> SereneState:
        """The evaluated initial population becomes the parents (its rewarding agents go to ``R``; they become
        candidates after the first generation, with the rest of ``P u O``)."""
        evaluation = self._describe(state, genotypes, evaluation, key)
        ns = self.ns.tell_initial(state.ns, genotypes, evaluation, key)
        extras = self._stored_extras(state, evaluation)
        state = state.replace(ns=ns, population_extras=extras, population_area=_reward_area(evaluation, genotypes.shape[0]),
                              spent=state.spent + genotypes.shape[0])
        state = self._survived(state, jnp.arange(genotypes.shape[0], dtype=jnp.int32), evaluation, initial=True)
        # The first chunk explores (no plan needed, and none compiled into the initial program).
        return state.replace(phase=jnp.where(state.spent >= self.budget, DONE, EXPLORE).astype(jnp.int32))

    # ----------------------------------------------------------------------------------------- #
    # What a learned descriptor space (STAX) changes: four hooks, identities here
    # ----------------------------------------------------------------------------------------- #
    def _describe(self, state: SereneState, genotypes: jax.Array, evaluation: Evaluation, key: jax.Array) -> Evaluation:
        """The evaluation with the descriptors the stores use (SERENE: the task's)."""
        return evaluation

    def _selector(self, state: SereneState, evaluation: Evaluation, key: jax.Array) -> Optional[Callable]:
        """The survival rule of novelty search (None: the ``P`` most novel)."""
        return None

    def _survived(self, state: SereneState, survivors: jax.Array, evaluation: Evaluation, initial: bool = False) -> SereneState:
        """Bookkeeping of what the population keeps per parent (``survivors`` index ``P u O``, or the
        initial population)."""
        return state

    def _after_chunk(self, state: SereneState, key: jax.Array) -> SereneState:
        """Work at the end of each chunk, before the scheduler chooses the next (STAX trains its encoder)."""
        return state

    # The plain ask / tell are the exploration phase's (the driver's shape checks use them).
    def ask(self, state: SereneState, key: jax.Array) -> Tuple[jax.Array, SereneState]:
        """Exploration's offspring ``(O, D)`` (the phases' own ``ask`` are what iterations run)."""
        genotypes, state, _ = self._ask_explore(state, key)
        return genotypes, state

    def tell(self, state: SereneState, genotypes: jax.Array, evaluation: Evaluation, key: jax.Array) -> SereneState:
        """Exploration's tell, every row counted, then :meth:`plan`."""
        state = self._tell_explore(state, genotypes, evaluation, jnp.ones(evaluation.fitnesses.shape, bool), key)
        return self.plan(state, jax.random.fold_in(key, 1))

    def phase(self, state: SereneState) -> jax.Array:
        """``() int32``: the phase of the next iteration (index into :attr:`phases`)."""
        return state.phase

    def archive(self, state: SereneState) -> Archive:
        """The novelty archive ``A`` (the archive of record)."""
        return state.ns.archive

    # ----------------------------------------------------------------------------------------- #
    # Exploration
    # ----------------------------------------------------------------------------------------- #
    def _ask_explore(self, state: SereneState, key: jax.Array):
        children, _ = self.ns.ask(state.ns, key)
        return children, state, jnp.ones((children.shape[0],), bool)

    def _sigma0(self, genotypes: jax.Array) -> jax.Array:
        """``(N,)``: each genome's distance to its nearest other genome, divided by 3 (fallback if 0)."""
        d2 = squared_distances(genotypes, genotypes)
        n = genotypes.shape[0]
        d2 = jnp.where(jnp.eye(n, dtype=bool), jnp.inf, d2)
        nearest = jnp.sqrt(jnp.min(d2, axis=1)) / 3.0
        return jnp.where(nearest > 0, nearest, self.sigma_fallback).astype(jnp.float32)

    def _add_candidates(self, candidates: Candidates, agents: Agents, new: jax.Array, sigma: jax.Array,
                        area: jax.Array) -> Candidates:
        k = candidates.valid.shape[0]
        rank = jnp.cumsum(new.astype(jnp.int32)) - 1
        keep = new & (rank < k)
        slot = (candidates.next + rank) % k
        target = jnp.where(keep, slot, k)
        overwritten = jnp.sum(keep & candidates.valid[jnp.clip(slot, 0, k - 1)], dtype=jnp.int32)
        dropped = jnp.sum(new & ~keep, dtype=jnp.int32)
        count = jnp.sum(keep, dtype=jnp.int32)
        return candidates.replace(
            agents=_put(candidates.agents, target, agents),
            sigma=candidates.sigma.at[target].set(sigma, mode="drop"),
            area=candidates.area.at[target].set(area, mode="drop"),
            valid=candidates.valid.at[target].set(True, mode="drop"),
            next=(candidates.next + count) % k,
            overflow=candidates.overflow + overwritten + dropped,
        )

    def _tell_explore(self, state: SereneState, offspring: jax.Array, evaluation: Evaluation, counted: jax.Array,
                      key: jax.Array) -> SereneState:
        k_describe, k_select, k_generation = jax.random.split(key, 3)
        evaluation = self._describe(state, offspring, evaluation, k_describe)
        old = state.ns
        ns, survivors = self.ns.generation(old, offspring, evaluation, k_generation,
                                           select=self._selector(state, evaluation, k_select))
        extras = self._stored_extras(state, evaluation)
        everyone = Agents(
            jnp.concatenate([old.population, offspring]),
            jnp.concatenate([old.descriptors, evaluation.descriptors]),
            jnp.concatenate([old.fitnesses, evaluation.fitnesses]),
            None if extras is None else _concat(state.population_extras, extras),
        )
        seen = jnp.concatenate([state.flagged, jnp.zeros((offspring.shape[0],), bool)])
        new = (everyone.fitnesses > 0) & ~seen
        area = jnp.concatenate([state.population_area, _reward_area(evaluation, offspring.shape[0])])
        candidates = self._add_candidates(state.candidates, everyone, new, self._sigma0(everyone.genotypes), area)
        n = jnp.sum(counted, dtype=jnp.int32)
        state = state.replace(
            ns=ns,
            flagged=(seen | new)[survivors],
            population_area=area[survivors],
            population_extras=None if extras is None else _take(everyone.extras, survivors),
            offspring=Agents(offspring, evaluation.descriptors, evaluation.fitnesses, extras),
            offspring_valid=jnp.ones((), bool),
            candidates=candidates,
            candidates_found=state.candidates_found + jnp.sum(new, dtype=jnp.int32),
            spent=state.spent + n,
            explore_evaluations=state.explore_evaluations + n,
            chunk_left=state.chunk_left - n,
        )
        return self._survived(state, survivors, evaluation)

    # ----------------------------------------------------------------------------------------- #
    # Exploitation
    # ----------------------------------------------------------------------------------------- #
    def _group(self, state: SereneState) -> jax.Array:
        """The slots an exploitation iteration steps: ``(G,) int32`` (faithful: the chosen one)."""
        if self.mode == "faithful":
            return jnp.maximum(state.chosen, 0)[None]
        return jnp.arange(self.emitter_slots, dtype=jnp.int32)

    def _ask_exploit(self, state: SereneState, key: jax.Array):
        idx = self._group(state)
        emitters = _take(state.slots.emitter, idx)
        keys = jax.vmap(lambda i: jax.random.fold_in(key, i))(idx)
        genotypes = jax.vmap(lambda e, k: self.emitter.ask(e, None, k))(emitters, keys)  # (G, b, D)
        asked = jax.vmap(self.emitter.num_asked)(emitters)
        b = genotypes.shape[1]
        counted = state.running[idx][:, None] & (jnp.arange(b)[None, :] < asked[:, None])
        return genotypes.reshape((-1,) + genotypes.shape[2:]), state, counted.reshape(-1)

    def _reference_novelty(self, state: SereneState, descriptors: jax.Array) -> jax.Array:
        """Novelty of ``(N, d)`` descriptors against ``P u O u A u R`` (none of them is in it)."""
        ns = state.ns
        refs = [ns.descriptors, state.offspring.descriptors, ns.archive.descriptors, ns.reward_archive.descriptors]
        masks = [jnp.ones((ns.descriptors.shape[0],), bool),
                 jnp.broadcast_to(state.offspring_valid, (state.offspring.descriptors.shape[0],)),
                 ns.archive.filled, ns.reward_archive.filled]
        return knn_novelty(descriptors, jnp.concatenate(refs), jnp.concatenate(masks), self.num_neighbors)

    def _novelty_against_rewards(self, state: SereneState, descriptors: jax.Array) -> jax.Array:
        """Novelty against ``R`` without the nearest neighbour (the agent's own copy in ``R``, as in the
        original's ``argsort(d)[1:k+1]``)."""
        r = state.ns.reward_archive
        k = self.num_neighbors + 1
        d2 = squared_distances(descriptors, r.descriptors)
        d2 = jnp.where(r.filled[None, :], d2, jnp.inf)
        kk = min(k, d2.shape[1])
        neg, _ = jax.lax.top_k(-d2, kk)
        nearest = -neg[:, 1:]
        finite = jnp.isfinite(nearest)
        dist = jnp.sqrt(jnp.where(finite, nearest, 0.0))
        count = jnp.sum(finite, axis=1)
        return jnp.where(count > 0, jnp.sum(dist, axis=1) / jnp.maximum(count, 1), jnp.inf).astype(jnp.float32)

    def _tell_exploit(self, state: SereneState, genotypes: jax.Array, evaluation: Evaluation, counted: jax.Array,
                      key: jax.Array) -> SereneState:
        k_describe, key = jax.random.split(key)
        evaluation = self._describe(state, genotypes, evaluation, k_describe)
        idx = self._group(state)
        g = idx.shape[0]
        slots = state.slots
        b = genotypes.shape[0] // g
        shape = lambda x: x.reshape((g, b) + x.shape[1:])
        gen, fit, desc = shape(genotypes), shape(evaluation.fitnesses.astype(jnp.float32)), shape(evaluation.descriptors)
        extras = self._stored_extras(state, evaluation)
        ex = None if extras is None else jax.tree_util.tree_map(shape, extras)
        cnt = shape(counted)
        running = state.running[idx]
        status = slots.status[idx]
        nov = self._reference_novelty(state, evaluation.descriptors).reshape(g, b)
        nov = jnp.where(cnt, nov, -jnp.inf)

        # 1. the emitters learn
        old = _take(slots.emitter, idx)
        result = AddResult(cell=jnp.full((g, b), -1, jnp.int32), status=jnp.zeros((g, b), jnp.int32), improvement=nov)
        told = jax.vmap(lambda e, x, f, dd, r: self.emitter.tell(e, None, x, f, dd, r))(old, gen, fit, desc, result)
        emitters = _where(running, told, old)
        values = jax.vmap(self.emitter.population_rewards)(emitters)  # (G, n)

        # 2. values: history ring, baseline of the first 3 steps, steps
        steps = slots.steps[idx]
        hist = slots.history[idx]
        h = hist.shape[1]
        row = jnp.arange(g)
        hist = jnp.where(running[:, None, None], hist.at[row, steps % h].set(values), hist)
        baseline = slots.baseline[idx] + jnp.where(running & (steps < 3), jnp.mean(values, axis=1), 0.0)
        steps = steps + running.astype(jnp.int32)

        # 3. the reward archive
        fit_c = jnp.where(cnt, fit, -jnp.inf)
        archived = slots.archived_max[idx]
        first = ~jnp.isfinite(archived)
        best_row = jnp.argmax(fit_c, axis=1)
        store = jnp.where(first[:, None], (jnp.arange(b)[None, :] == best_row[:, None]) & (fit_c > 0), fit_c > archived[:, None])
        store = store & cnt & running[:, None]
        archived = jnp.maximum(archived, jnp.max(jnp.where(store, fit_c, -jnp.inf), axis=1))
        r_archive = _add_all(state.ns.reward_archive, gen.reshape((g * b, -1)), desc.reshape((g * b, -1)),
                             jnp.where(store, fit, -jnp.inf).reshape(-1),
                             None if ex is None else _pick(jax.tree_util.tree_map(lambda x: x.reshape((g * b,) + x.shape[2:]), ex),
                                                           state.ns.reward_archive))

        # 4. novelty candidates (a reservoir of 5) and the most novel so far
        reservoir, seen = jax.vmap(_reservoir_update)(
            _take(slots.reservoir, idx), slots.seen[idx], Agents(gen, desc, fit, ex), nov, slots.most_novel[idx],
            jax.random.split(key, g))
        reservoir = _where(running, reservoir, _take(slots.reservoir, idx))
        seen = jnp.where(running, seen, slots.seen[idx])
        most_novel = jnp.where(running, jnp.maximum(slots.most_novel[idx], jnp.max(nov, axis=1)), slots.most_novel[idx])

        # 5. bootstrap verdicts, terminations
        improvement_now = _improvement(hist, steps, baseline)
        boot_done = running & (status == BOOTSTRAPPING) & (steps >= 1 + self.bootstrap_steps)
        promote = boot_done & (improvement_now > 0)
        drop = boot_done & ~promote
        stagnant = jax.vmap(_stagnated)(hist, steps)
        stop = jax.vmap(self.emitter.should_stop)(emitters)
        if self.max_emitter_steps:
            stop = stop | (steps >= self.max_emitter_steps)
        terminate = running & (status == ACTIVE) & (stagnant | stop)
        new_status = jnp.where(promote, ACTIVE, jnp.where(drop | terminate, EMPTY, status)).astype(jnp.int32)
        improvement = jnp.where(boot_done, improvement_now, slots.improvement[idx])

        # 6. terminated emitters hand their novelty candidates to A and their ancestor to R again
        ancestors = _take(slots.ancestor, idx)
        filled = (jnp.arange(RESERVOIR)[None, :] < jnp.minimum(seen, RESERVOIR)[:, None]) & terminate[:, None]
        flat = lambda x: x.reshape((g * RESERVOIR,) + x.shape[2:])
        a_archive = _add_all(state.ns.archive, flat(reservoir.genotypes), flat(reservoir.descriptors),
                             jnp.where(filled, reservoir.fitnesses, -jnp.inf).reshape(-1),
                             None if reservoir.extras is None else jax.tree_util.tree_map(flat, reservoir.extras))
        r_archive = _add_all(r_archive, ancestors.genotypes, ancestors.descriptors,
                             jnp.where(terminate, ancestors.fitnesses, -jnp.inf),
                             None if ancestors.extras is None else _pick(ancestors.extras, r_archive))

        # 7. write the slots back, count the evaluations
        used = jnp.sum(cnt, axis=1, dtype=jnp.int32)
        area = slots.area[idx]
        n_areas = state.area_evaluations.shape[0]
        area_evaluations = state.area_evaluations.at[jnp.where(area >= 0, area, n_areas)].add(used, mode="drop")
        slots = slots.replace(
            emitter=_put(slots.emitter, idx, emitters),
            status=slots.status.at[idx].set(new_status),
            steps=slots.steps.at[idx].set(steps),
            history=slots.history.at[idx].set(hist),
            baseline=slots.baseline.at[idx].set(baseline),
            improvement=slots.improvement.at[idx].set(improvement),
            archived_max=slots.archived_max.at[idx].set(archived),
            most_novel=slots.most_novel.at[idx].set(most_novel),
            reservoir=_put(slots.reservoir, idx, reservoir),
            seen=slots.seen.at[idx].set(seen),
            evaluations=slots.evaluations.at[idx].add(used),
        )
        total = jnp.sum(used, dtype=jnp.int32)
        state = state.replace(
            ns=state.ns.replace(archive=a_archive, reward_archive=r_archive),
            slots=slots,
            spent=state.spent + total,
            exploit_evaluations=state.exploit_evaluations + total,
            bootstrap_evaluations=state.bootstrap_evaluations + jnp.sum(jnp.where(status == BOOTSTRAPPING, used, 0), dtype=jnp.int32),
            area_evaluations=area_evaluations,
            chunk_left=state.chunk_left - total,
            emitters_promoted=state.emitters_promoted + jnp.sum(promote, dtype=jnp.int32),
            candidates_dropped=state.candidates_dropped + jnp.sum(drop, dtype=jnp.int32),
            emitters_terminated=state.emitters_terminated + jnp.sum(terminate, dtype=jnp.int32),
        )
        return state

    # ----------------------------------------------------------------------------------------- #
    # What the next iteration does
    # ----------------------------------------------------------------------------------------- #
    def _num_emitters(self, state: SereneState) -> jax.Array:
        return jnp.sum(state.candidates.valid, dtype=jnp.int32) + jnp.sum(state.slots.status != EMPTY, dtype=jnp.int32)

    def _end_chunk(self, state: SereneState, key: jax.Array) -> SereneState:
        """Re-estimate the live emitters' improvement, ask the scheduler for the next chunk's phase."""
        k_after, key = jax.random.split(key)
        state = self._after_chunk(state, k_after)
        slots = state.slots
        active = slots.status == ACTIVE
        slots = slots.replace(improvement=jnp.where(active, jax.vmap(_improvement_one)(slots.history, slots.steps, slots.baseline),
                                                    slots.improvement))
        state = state.replace(slots=slots)
        now = self._num_emitters(state)
        phase, scheduler = self.scheduler.choose(state.scheduler, key, state.phase, state.spent, self.budget,
                                                 state.emitters_at_chunk_start, now)
        exploit = phase == EXPLOIT
        cand = state.candidates
        priority = jnp.where(exploit, self._novelty_against_rewards(state, cand.agents.descriptors), cand.priority)
        return state.replace(
            scheduler=scheduler, phase=phase, stage=_i32(BOOTSTRAP), chunk_left=_i32(self.chunk_evaluations), chosen=_i32(-1),
            running=jnp.zeros_like(state.running), emitters_at_chunk_start=now,
            candidates=cand.replace(priority=priority),
            explore_chunks=state.explore_chunks + (phase == EXPLORE).astype(jnp.int32),
            exploit_chunks=state.exploit_chunks + exploit.astype(jnp.int32),
        )

    def _load_candidates(self, state: SereneState, key: jax.Array) -> SereneState:
        """Move the most novel candidates (1 in faithful mode, up to the free slots in parallel) into free
        slots, as bootstrapping emitters."""
        m = 1 if self.mode == "faithful" else self.emitter_slots
        cand, slots = state.candidates, state.slots
        score = jnp.where(cand.valid, cand.priority, -jnp.inf)
        score = jnp.where(jnp.isnan(score), jnp.inf, score)
        _, pick = jax.lax.top_k(jnp.where(cand.valid, score, -jnp.inf), m)  # (m,)
        free = jnp.argsort(slots.status != EMPTY, stable=True)[:m].astype(jnp.int32)
        n = jnp.minimum(jnp.sum(cand.valid), jnp.sum(slots.status == EMPTY))
        ok = jnp.arange(m) < n
        target = jnp.where(ok, free, self.emitter_slots)
        agents = _take(cand.agents, pick)
        keys = jax.random.split(key, m)
        fresh = jax.vmap(self.emitter.init_at)(keys, agents.genotypes, cand.sigma[pick])
        s = self.emitter_slots
        slots = slots.replace(
            emitter=_put(slots.emitter, target, fresh),
            status=slots.status.at[target].set(BOOTSTRAPPING, mode="drop"),
            steps=slots.steps.at[target].set(0, mode="drop"),
            history=slots.history.at[target].set(0.0, mode="drop"),
            baseline=slots.baseline.at[target].set(0.0, mode="drop"),
            improvement=slots.improvement.at[target].set(0.0, mode="drop"),
            archived_max=slots.archived_max.at[target].set(-jnp.inf, mode="drop"),
            ancestor=_put(slots.ancestor, target, agents),
            area=slots.area.at[target].set(cand.area[pick], mode="drop"),
            most_novel=slots.most_novel.at[target].set(-jnp.inf, mode="drop"),
            seen=slots.seen.at[target].set(0, mode="drop"),
            evaluations=slots.evaluations.at[target].set(0, mode="drop"),
        )
        cand = cand.replace(valid=cand.valid.at[jnp.where(ok, pick, cand.valid.shape[0])].set(False, mode="drop"))
        loaded = jnp.zeros((s,), bool).at[target].set(True, mode="drop")
        chosen = jnp.where(self.mode == "faithful", target[0], state.chosen)
        return state.replace(candidates=cand, slots=slots, running=loaded, chosen=_i32(chosen))

    def _choose_emitter(self, state: SereneState, key: jax.Array) -> jax.Array:
        """Faithful mode: an active slot drawn uniformly from the first Pareto front of (ancestor novelty
        against ``R``, improvement); by improvement alone while ``R`` is empty."""
        slots = state.slots
        active = slots.status == ACTIVE
        novelty = self._novelty_against_rewards(state, slots.ancestor.descriptors)
        novelty = jnp.where(jnp.isfinite(novelty), novelty, jnp.finfo(jnp.float32).max)
        fronts = non_dominated_sort(jnp.stack([novelty, slots.improvement], axis=1), active)
        pareto = uniform_selection(key, active & (fronts == 0), 1)[0]
        by_improvement = jnp.argmax(jnp.where(active, slots.improvement, -jnp.inf)).astype(jnp.int32)
        return jnp.where(state.ns.reward_archive.num_elites > 0, pareto, by_improvement).astype(jnp.int32)

    def _transition(self, state: SereneState, key: jax.Array) -> Tuple[SereneState, jax.Array]:
        """One step of the phase machine: ``(state, settled)``; settled when the next iteration is known."""
        slots = state.slots
        booting = jnp.any(slots.status == BOOTSTRAPPING)
        can_boot = ((state.chunk_left > self.bootstrap_fraction * self.chunk_evaluations) & jnp.any(state.candidates.valid)
                    & jnp.any(slots.status == EMPTY))
        active = slots.status == ACTIVE
        chosen_active = (state.chosen >= 0) & (slots.status[jnp.maximum(state.chosen, 0)] == ACTIVE)
        exploit = state.phase == EXPLOIT
        case = jnp.select(
            [state.spent >= self.budget, state.phase == DONE,
             (state.phase == EXPLORE) & (state.chunk_left > 0), exploit & booting, state.chunk_left <= 0,
             exploit & (state.stage == BOOTSTRAP) & can_boot, exploit & (state.stage == BOOTSTRAP), jnp.any(active)],
            [0, 0, 1, 6, 2, 3, 4, 5], default=2)
        k_choose, k_other = jax.random.split(key)

        def done(s):
            return s.replace(phase=_i32(DONE), running=jnp.zeros_like(s.running)), True

        def stay(s):
            return s, True

        def end_chunk(s):
            return self._end_chunk(s, k_other), False

        def load(s):
            return self._load_candidates(s, k_other), True

        def to_run(s):
            return s.replace(stage=_i32(RUN)), False

        def run(s):
            if self.mode == "parallel":
                return s.replace(running=s.slots.status == ACTIVE), True
            # The Pareto choice (novelty of every ancestor against R) only when the chosen emitter is gone.
            chosen = jax.lax.cond(chosen_active, lambda: s.chosen, lambda: self._choose_emitter(s, k_choose))
            return s.replace(chosen=chosen, running=jnp.arange(self.emitter_slots) == chosen), True

        def resume_boot(s):  # a bootstrap the last chunk's end interrupted (parallel mode) goes on
            booting_slots = s.slots.status == BOOTSTRAPPING
            chosen = jnp.argmax(booting_slots).astype(jnp.int32) if self.mode == "faithful" else s.chosen
            return s.replace(running=booting_slots, chosen=chosen), True

        branches = [done, stay, end_chunk, load, to_run, run, resume_boot]
        out, settled = jax.lax.switch(case, [lambda s, f=f: _settle(f(s)) for f in branches], state)
        return out, settled

    def plan(self, state: SereneState, key: jax.Array) -> SereneState:
        """What the next iteration does (the driver calls it after every iteration): run the phase machine
        until that is known (at most 16 transitions; then explore)."""
        def cond(carry):
            _, settled, i = carry
            return ~settled & (i < 16)

        def body(carry):
            s, _, i = carry
            s, settled = self._transition(s, jax.random.fold_in(key, i))
            return s, settled, i + 1

        state, settled, _ = jax.lax.while_loop(cond, body, (state, jnp.zeros((), bool), _i32(0)))
        # An exploitation chunk with nothing to do, chosen again and again by a sampling scheduler: explore.
        return state.replace(phase=jnp.where(settled, state.phase, EXPLORE).astype(jnp.int32),
                             chunk_left=jnp.where(settled, state.chunk_left, self.chunk_evaluations).astype(jnp.int32))

    # ----------------------------------------------------------------------------------------- #
    def metrics(self, state: SereneState) -> Dict[str, jax.Array]:
        """SERENE's own metrics (scalars): ``phase`` (0 explore, 1 exploit, 2 done: the next iteration's),
        ``explore_evaluations``, ``exploit_evaluations``, ``bootstrap_evaluations`` (int32, the initial
        population is in none of them), ``candidates`` (waiting), ``active_emitters``, ``emitters_promoted``,
        ``candidates_dropped``, ``emitters_terminated``, ``candidate_overflow``, ``explore_chunks``,
        ``exploit_chunks``, ``reward_archive_size``, ``mean_population_fitness`` and, per reward area ``i``,
        ``area_evaluations_<i>`` (emitter evaluations spent from ancestors of that area)."""
        out = {
            "phase": state.phase,
            "explore_evaluations": state.explore_evaluations,
            "exploit_evaluations": state.exploit_evaluations,
            "bootstrap_evaluations": state.bootstrap_evaluations,
            "candidates": jnp.sum(state.candidates.valid, dtype=jnp.int32),
            "active_emitters": jnp.sum(state.slots.status == ACTIVE, dtype=jnp.int32),
            "emitters_promoted": state.emitters_promoted,
            "candidates_dropped": state.candidates_dropped,
            "emitters_terminated": state.emitters_terminated,
            "candidate_overflow": state.candidates.overflow,
            "explore_chunks": state.explore_chunks,
            "exploit_chunks": state.exploit_chunks,
            "reward_archive_size": state.ns.reward_archive.num_elites,
            "mean_population_fitness": jnp.mean(state.ns.fitnesses),
        }
        for i in range(self.num_reward_areas):
            out[f"area_evaluations_{i}"] = state.area_evaluations[i]
        return out


def _settle(result):
    state, settled = result
    return state, jnp.asarray(settled, bool)


def _reward_area(evaluation: Evaluation, n: int) -> jax.Array:
    extras = evaluation.extras if isinstance(evaluation.extras, dict) else {}
    return jnp.asarray(extras.get("reward_area", jnp.full((n,), -1, jnp.int32)), jnp.int32)


def _pick(extras: Any, archive: Archive) -> Any:
    """The entries of ``extras`` that ``archive`` stores (None if it stores none)."""
    if archive.extras is None or extras is None:
        return None
    return {k: extras[k] for k in archive.extras}


def _add_all(archive: Archive, genotypes, descriptors, fitnesses, extras) -> Archive:
    """Store every row with a finite fitness (the others are masks), whatever the archive's insertion
    policy (``A``'s is "5 random per generation", which must not thin out what SERENE hands it)."""
    policy, threshold = archive.policy, archive.threshold
    view = archive.replace(policy="threshold", threshold=jnp.zeros((), jnp.float32))
    extras = extras if archive.extras is not None else None
    view, _ = view.add(genotypes, descriptors, fitnesses, extras, novelty=jnp.full(fitnesses.shape, jnp.inf))
    return view.replace(policy=policy, threshold=threshold)


def _reservoir_update(reservoir: Agents, seen: jax.Array, proposals: Agents, novelty: jax.Array, best: jax.Array,
                      key: jax.Array) -> Tuple[Agents, jax.Array]:
    """Offer the proposals more novel than ``best`` (one slot's ``(b, ...)``) to a uniform reservoir sample of
    :data:`RESERVOIR` (Vitter's algorithm R), in row order."""
    better = novelty > best
    draws = jax.random.uniform(key, novelty.shape)

    def body(i, carry):
        res, count = carry
        j = jnp.where(count < RESERVOIR, count, jnp.floor(draws[i] * (count + 1)).astype(jnp.int32))
        write = better[i] & (j < RESERVOIR)
        target = jnp.where(write, j, RESERVOIR)
        res = _put(res, target[None], _take(proposals, jnp.array([i])))
        return res, count + better[i].astype(jnp.int32)

    return jax.lax.fori_loop(0, novelty.shape[0], body, (reservoir, seen))


def _recent(history: jax.Array, steps: jax.Array, count: int) -> Tuple[jax.Array, jax.Array]:
    """``(values (count, n), valid (count,))``: the last ``count`` steps of one slot's ring."""
    h = history.shape[0]
    t = steps - count + jnp.arange(count)
    return history[t % h], t >= 0


def _improvement_one(history: jax.Array, steps: jax.Array, baseline: jax.Array) -> jax.Array:
    last, valid = _recent(history, steps, 3)
    mean_last = jnp.sum(jnp.where(valid, jnp.mean(last, axis=1), 0.0)) / jnp.maximum(jnp.sum(valid), 1)
    mean_first = baseline / jnp.maximum(jnp.minimum(steps, 3), 1)
    return jnp.maximum(mean_last - mean_first, 0.0)


def _improvement(history: jax.Array, steps: jax.Array, baseline: jax.Array) -> jax.Array:
    """``max(mean(values[-3:]) - mean(values[:3]), 0)`` per slot: ``(G, H, n), (G,), (G,) -> (G,)``."""
    return jax.vmap(_improvement_one)(history, steps, baseline)


def _stagnated(history: jax.Array, steps: jax.Array) -> jax.Array:
    """SERENE's stagnation rule on one slot's ring ``(H, n)`` after ``steps`` steps (module docstring)."""
    h = history.shape[0]
    oldest = history[(steps - h + jnp.arange(STAGNATION_SPAN)) % h]
    newest = history[(steps - STAGNATION_SPAN + jnp.arange(STAGNATION_SPAN)) % h]
    worse = (jnp.median(oldest) >= jnp.median(newest)) | (jnp.max(oldest) >= jnp.max(newest))
    return (steps > h) & worse


class Serene(Driver):
    """SERENE (:class:`SereneAlgorithm`) on the :class:`~qd.algorithms.driver.Driver`.

    Args:
        evaluate: ``evaluate(genotypes, key) -> Evaluation`` (pure, jittable); extras ``gt_descriptor`` and
            ``reward_area`` feed the metrics (the sparse tasks return them).
        ground_truth_bounds: ``(lower, upper)`` of the 2-D ground-truth grid.
        num_reward_areas: ``A``.
        emitter, budget, and the keywords of :class:`SereneAlgorithm`.
        coverage_resolution, compiler_options, devices: as :class:`~qd.algorithms.NoveltySearch`.

    ``init(archive, initial_genotypes, reward_archive, key)`` evaluates the initial population; then
    ``run`` / ``scan`` iterations until ``metrics["phase"] == 2`` (the budget is spent; further iterations
    evaluate nothing). Metrics: the novelty search ones (``gt_coverage`` counts exploration agents only,
    ``reward_areas_found`` and ``best_reward_area_<i>`` every evaluation), and :meth:`SereneAlgorithm.metrics`.

    Example::

        task = Curling()
        serene = Serene(task.evaluate, task.descriptor_bounds, task.num_reward_areas,
                        FitnessEmitter(), budget=50_000)
        archive = UnstructuredArchive.create(jnp.zeros(task.num_params), 16_384, 2, policy="random")
        rewards = UnstructuredArchive.create(jnp.zeros(task.num_params), 16_384, 2, threshold=0.0)
        state, _ = serene.init(archive, task.initial_genotypes(k1, 100), rewards, k2)
        while int(state.phase) != 2:
            state, metrics = serene.scan(state, 500)
    """

    def __init__(self, evaluate: Callable[[Any, jax.Array], Evaluation], ground_truth_bounds: Tuple[Sequence[float], Sequence[float]],
                 num_reward_areas: int, emitter: Any, budget: int, *, coverage_resolution: int = 50,
                 compiler_options: Optional[Dict[str, Any]] = None, devices: Any = None, **kwargs: Any):
        algorithm = SereneAlgorithm(emitter, budget, num_reward_areas=num_reward_areas, **kwargs)
        truth = GroundTruth.create(ground_truth_bounds, num_reward_areas, coverage_resolution, "SERENE")
        if not callable(evaluate):
            raise TypeError(f"SERENE: evaluate must be a function (genotypes, key) -> Evaluation; got {evaluate!r}")
        super().__init__(algorithm, evaluate, metrics_fn=novelty_archive_metrics, ground_truth=truth,
                         compiler_options=compiler_options, devices=devices)
