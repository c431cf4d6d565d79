"""A UCB1 bandit that picks, each iteration, which emitters of a pool run (multi-emitter MAP-Elites).

Cully, "Multi-Emitter MAP-Elites: Improving quality, diversity and data efficiency with heterogeneous sets
of emitters", GECCO 2021 (arXiv 2007.05352); the rule below is that of pyribs 0.12's ``BanditScheduler``
(``ribs/schedulers/_bandit_scheduler.py``), which this class reproduces choice for choice (see
:class:`BanditScheduler` for the two documented differences).
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Optional, Tuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from emitters.base import Emitter, check_members
from qd import options as checks  # the configuration checks (no algorithm imported)

RESELECT = ("terminated", "all")


@struct.dataclass
class BanditState:
    """The scheduler's state (a pytree; ``P`` pool members, ``K = num_active``, ``H`` history rows).

    Attributes:
        emitter_states: one entry per distinct member configuration (see :attr:`BanditScheduler.groups`):
            the states of that configuration's members stacked on a leading axis (their count); None
            leaves for stateless emitters.
        selected: ``(K,) int32``, the pool indices of the members that run in the next ``ask``, ascending
            (slot ``s`` produces rows ``s*b .. (s+1)*b - 1`` of the batch, ``b`` the members' batch size).
        successes: ``(H, P) int32``, candidates of each member that the archive added (``NEW`` or
            ``IMPROVED``): one row per iteration of the window (``H = window``), or one running total
            (``H = 1``) without a window.
        candidates: ``(H, P) int32``, candidates each member produced, in the same rows.
        iteration: ``() int32``, the number of ``tell`` calls so far (the window's write position).
    """

    emitter_states: Tuple[Any, ...]
    selected: jax.Array
    successes: jax.Array
    candidates: jax.Array
    iteration: jax.Array


def ucb1_scores(successes: jax.Array, candidates: jax.Array, zeta: float) -> jax.Array:
    """pyribs' UCB1 score of each pool member: ``(P,) float32``, ``+inf`` for a member with no candidate.

    ``score_i = s_i / n_i + zeta * sqrt(ln(S) / n_i)`` with ``s_i`` the member's added candidates, ``n_i`` its
    candidates and ``S = sum_i s_i`` (pyribs takes the log of the total *successes*, where textbook UCB1,
    Auer et al. 2002, takes the total number of plays). When ``S = 0`` the exploration term is 0 (pyribs
    computes ``ln 0`` there and its scores are NaN).

    Args:
        successes, candidates: ``(P,)`` integer counts (over the window when there is one).
        zeta: the exploration constant (non-negative).
    """
    s = successes.astype(jnp.float32)
    n = candidates.astype(jnp.float32)
    tried = candidates > 0
    safe_n = jnp.where(tried, n, 1.0)
    log_total = jnp.log(jnp.maximum(s.sum(), 1.0))
    score = s / safe_n + zeta * jnp.sqrt(log_total / safe_n)
    return jnp.where(tried, score, jnp.inf)


def choose(keep: jax.Array, scores: jax.Array, num_active: int) -> jax.Array:
    """The ``(K,) int32`` ascending pool indices that run next.

    Members in ``keep`` (``(P,) bool``, at most ``K`` of them) stay; the free slots go to the others by
    decreasing score (``+inf``: untried members first), ties to the higher pool index (what pyribs' reversed
    stable ``argsort`` does for pools of up to 16 members, where numpy's sort is stable).
    """
    index = jnp.arange(scores.shape[0])
    order = jnp.lexsort((-index, -scores, ~keep))  # last key first: kept, then best score, then higher index
    return jnp.sort(order[:num_active]).astype(jnp.int32)


@struct.dataclass
class BanditScheduler(Emitter):
    """Runs ``num_active`` emitters of a pool each iteration, chosen by UCB1 on their recent success.

    The pool members all have the same batch size ``b``; every ``ask`` returns ``B = num_active * b``
    genotypes (fixed shapes: the choice changes which members run, never the batch), the ``s``-th selected
    member (ascending pool index) in rows ``s*b .. (s+1)*b - 1``. ``tell`` gives each selected member
    exactly its slice of the genotypes, scores and :class:`qd.AddResult`; the other members' states are
    not touched. Then it updates the statistics and chooses the members of the next ``ask``, inside jit
    (the choice is part of the state; nothing returns to the host). Deterministic from the key. Build it
    with :meth:`create`.

    The rule (Cully 2021; pyribs 0.12's ``BanditScheduler``, matched choice for choice on hand-made
    reward streams):

    - reward of a member = its candidates that the archive added (status ``NEW`` or ``IMPROVED``) over the
      candidates it produced; UCB1 score ``s_i / n_i + zeta * sqrt(ln(S) / n_i)``, ``S`` the total
      successes of the pool (see :func:`ucb1_scores`);
    - the first ``ask`` runs members ``0 .. num_active - 1``; members never run have score ``+inf``, so they
      run before any tried member; ties go to the higher pool index (as pyribs');
    - ``reselect="all"``: every slot is chosen again after each ``tell``. ``"terminated"`` (pyribs'
      default): a member stays selected until it restarts, i.e. when its ``restarts(state)`` (an optional
      emitter method returning its restart count, pyribs' ``restarts`` attribute) grew during the ``tell``;
      a member without ``restarts`` is taken to restart every iteration (as pyribs does), so for the
      Gaussian and iso+line emitters both modes are the same;
    - ``window=None`` (pyribs): the statistics are totals over the whole run. ``window=W`` ("recent
      success", Cully's sliding window): only the last ``W`` iterations count, kept in a fixed ``(W, P)``
      buffer; a member that has not run in the last ``W`` iterations counts as untried again, so it is run
      once more (the sliding-window UCB of Garivier & Moulines, 2011): take ``W`` several times
      ``P / K``, or those forced runs take a large share of the slots.

    Differences from pyribs, both deliberate: with no success at all in the pool (``S = 0``) pyribs' scores
    are NaN and its sort then prefers already-tried members; here the exploration term is 0 and untried
    members still come first. For pools of more than 16 members pyribs' tie order is that of numpy's
    unstable sort; here it is always the higher index.

    Cost of ``ask``/``tell``: members that compare equal (e.g. ``[IsoLineEmitter(...)] * 10``) form one
    configuration (:attr:`groups`) and have their states stacked. Each configuration ``g`` of ``n_g`` members
    gets ``m_g = min(K, n_g)`` lanes (the selected members are distinct, so at most that many are of ``g``):
    the slots holding a member of ``g`` are compacted into the lanes (fixed shapes), and the configuration's
    ``ask`` and ``tell`` are ``jax.vmap``-ed over its lanes, each lane with its member's state, its slot's key
    and slice; unused lanes repeat a used one and write nothing back. So the program traces each
    configuration's ask and tell once (not once per slot), and an iteration runs ``sum_g m_g`` member asks
    and tells (``K <= sum_g m_g <= G K``), vectorised per configuration, not ``K`` one after the other.
    Under ``jax.vmap`` (several seeds in one program) nothing changes: there is no switch to turn into a
    select of every branch. The tells of configurations with no state arrays and no ``restarts`` (Gaussian,
    iso+line) are skipped: they have nothing to update. Results are those of running the selected members
    one by one: the same selections and proposals; float32 CMA-ES states may differ by an ulp (the
    evolution paths: a vmapped matrix-vector product rounds differently). Measured (MAP-Elites ``scan``,
    shared 2-core CPU): Multi-Emitter MAP-Elites on the 100-D sphere (``benchmarks/sphere_lp.py``
    ``me_map_elites``: 60 members in 4 configurations, 15 CMA-ES of population 36 each, ``K = 15``, ``b =
    36``) compiles in 25-35 s instead of 130-240 s with the previous ``lax.switch`` over the configurations
    in every slot, but runs about as fast, 9.1-9.3 ms per iteration (medians; the switch: 8.8-12 ms): its
    ``sum_g m_g = 60`` lanes include 45 CMA-ES updates for the ~11 CMA members that run (a pool whose
    configurations each fill most lanes gains the most). On the 100-D arm (``b = 256``, ``K = 2``, 2
    iso+line + 2 Gaussian members, 3 configurations, 4 lanes): 0.63-0.81 vs 0.64-0.67 ms per iteration.

    Counts are int32: at most ``2**31 - 1`` candidates per member over the window (e.g. 10^5 iterations at
    ``b = 20000`` without a window).

    Attributes:
        emitters: static tuple of the ``P`` pool members (each with ``batch_size``, ``init``, ``ask`` and
            ``tell``; optionally ``restarts(state) -> int``).
        num_active: static ``K``, how many members run each iteration (``1 <= K <= P``).
        zeta: static UCB1 exploration constant (default 0.05, pyribs').
        reselect: static ``"terminated"`` (default, pyribs') or ``"all"``.
        window: static number of past iterations the statistics cover, or None (default, pyribs): all.
        batch_size: ``num_active * b``.

    Raises:
        ValueError: no member; a member that is not an emitter or whose ``batch_size`` is not a positive
            integer; members with different batch sizes; ``num_active`` not an integer in ``[1, P]``;
            ``zeta`` negative, NaN or infinite; ``reselect`` not ``"terminated"`` / ``"all"``; ``window``
            not None nor a positive integer; ``batch_size`` given and not ``num_active * b``; ``clip``
            given (each member clips its own proposals). ``init`` raises it too when the members' proposals
            differ in pytree structure, shape or dtype.
    """

    emitters: Tuple[Emitter, ...] = struct.field(pytree_node=False, default=())
    num_active: int = struct.field(pytree_node=False, default=1)
    zeta: float = struct.field(pytree_node=False, default=0.05)
    reselect: str = struct.field(pytree_node=False, default="terminated")
    window: Optional[int] = struct.field(pytree_node=False, default=None)

    def __post_init__(self):
        super().__post_init__()
        members = check_members(
            "BanditScheduler", self.emitters, "BanditScheduler needs at least one emitter in its pool"
        )
        sizes = [int(e.batch_size) for e in members]
        if len(set(sizes)) > 1:
            listing = ", ".join(f"{i}: {type(e).__name__} {b}" for i, (e, b) in enumerate(zip(members, sizes)))
            raise ValueError(
                f"BanditScheduler: every member must have the same batch_size (the batch is num_active x it); "
                f"got {listing}"
            )
        pool = len(members)
        k = self.num_active
        if isinstance(k, (bool, np.bool_)) or not isinstance(k, (numbers.Integral, np.integer)) or not 1 <= k <= pool:
            raise ValueError(
                f"BanditScheduler: num_active must be an integer between 1 and the pool size {pool}; got {k!r}"
            )
        zeta = self.zeta
        real = isinstance(zeta, (numbers.Real, np.floating, np.integer)) and not isinstance(zeta, (bool, np.bool_))
        if not real or not math.isfinite(float(zeta)) or float(zeta) < 0:
            raise ValueError(f"BanditScheduler: zeta must be a finite number >= 0; got {zeta!r}")
        if self.reselect not in RESELECT:
            raise ValueError(f"BanditScheduler: reselect must be 'terminated' or 'all'; got {self.reselect!r}")
        window = self.window
        if window is not None:
            window = checks.check_positive_int("BanditScheduler: window", window)
        if self.batch_size != int(k) * sizes[0]:
            raise ValueError(
                f"BanditScheduler: batch_size={self.batch_size} but num_active x the members' batch size is "
                f"{int(k)} x {sizes[0]} = {int(k) * sizes[0]}; build it with BanditScheduler.create(...)"
            )
        if self.clip is not None:
            raise ValueError("BanditScheduler: clip is not applied to the members' proposals; give each member its clip")
        object.__setattr__(self, "emitters", members)
        object.__setattr__(self, "num_active", int(k))
        object.__setattr__(self, "zeta", float(zeta))
        object.__setattr__(self, "window", window)

    @classmethod
    def create(
        cls,
        *emitters: Emitter,
        num_active: int,
        zeta: float = 0.05,
        reselect: str = "terminated",
        window: Optional[int] = None,
    ) -> "BanditScheduler":
        """A scheduler over the pool ``emitters``; ``batch_size`` is ``num_active`` x their batch size.

        Raises:
            ValueError: as the class (checked there; a bad member does not fail here first).
        """
        if not emitters:
            raise ValueError("BanditScheduler needs at least one emitter in its pool")
        b = getattr(emitters[0], "batch_size", None)
        ok = lambda v: isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)) and v > 0
        batch = int(num_active) * int(b) if ok(b) and ok(num_active) else 1
        return cls(
            batch_size=batch, emitters=tuple(emitters), num_active=num_active, zeta=zeta, reselect=reselect,
            window=window,
        )

    # ---------------------------------------------------------------------------------------- #
    # Static layout
    # ---------------------------------------------------------------------------------------- #
    @property
    def pool_size(self) -> int:
        """``P``, the number of pool members."""
        return len(self.emitters)

    @property
    def member_batch_size(self) -> int:
        """``b``, each member's batch size."""
        return int(self.emitters[0].batch_size)

    @property
    def groups(self) -> Tuple[Tuple[int, ...], ...]:
        """The pool indices of each distinct configuration (members that compare equal), in order of first use."""
        firsts, groups = [], []
        for i, e in enumerate(self.emitters):
            for g, f in enumerate(firsts):
                if _same(self.emitters[f], e):
                    groups[g].append(i)
                    break
            else:
                firsts.append(i)
                groups.append([i])
        return tuple(tuple(g) for g in groups)

    def _tables(self):
        """``(group_of, local_of)``: two ``(P,) int32`` arrays, each member's group and its index in it."""
        group_of = np.zeros(self.pool_size, np.int32)
        local_of = np.zeros(self.pool_size, np.int32)
        for g, members in enumerate(self.groups):
            for j, i in enumerate(members):
                group_of[i], local_of[i] = g, j
        return jnp.asarray(group_of), jnp.asarray(local_of)

    # ---------------------------------------------------------------------------------------- #
    # Emitter interface
    # ---------------------------------------------------------------------------------------- #
    def init(self, key: jax.Array, archive) -> BanditState:
        """Every member's initial state (each from its own key), no statistics, members ``0..K-1`` selected.

        Raises:
            ValueError: the members' proposals differ in pytree structure, shapes or dtypes.
        """
        self._check_proposals(key, archive)
        keys = jax.random.split(key, self.pool_size)
        states = [e.init(k, archive) for e, k in zip(self.emitters, keys)]
        stacked = tuple(
            jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *[states[i] for i in members]) for members in self.groups
        )
        rows = 1 if self.window is None else self.window
        zeros = jnp.zeros((rows, self.pool_size), jnp.int32)
        return BanditState(
            emitter_states=stacked,
            selected=jnp.arange(self.num_active, dtype=jnp.int32),
            successes=zeros,
            candidates=zeros,
            iteration=jnp.zeros((), jnp.int32),
        )

    def ask(self, state: BanditState, archive, key: jax.Array):
        """``B = K * b`` genotypes (pytree, leading axis ``B``): the selected members' proposals in slot order.

        Slot ``s`` calls member ``state.selected[s]`` with key ``jax.random.split(key, K)[s]``. Each
        configuration's ask is traced once, ``jax.vmap``-ed over its lanes (see :meth:`_lanes`).
        """
        keys = jax.random.split(key, self.num_active)
        lanes = self._lanes(state.selected)
        outs = []
        for g, (slot, local, _) in enumerate(lanes):
            emitter = self._group_emitter(g)
            outs.append(
                jax.vmap(emitter.ask, in_axes=(0, None, 0))(_take(state.emitter_states[g], local), archive, keys[slot])
            )
        # Lanes of every group, concatenated; slot s takes the lane that ran its member (exactly one).
        if len(outs) == 1:  # one configuration: its lanes are the slots, in order
            proposals = outs[0]
        else:
            position = self._slot_positions(lanes)
            proposals = jax.tree_util.tree_map(lambda *xs: jnp.concatenate(xs, axis=0)[position], *outs)
        return jax.tree_util.tree_map(lambda x: x.reshape((-1,) + x.shape[2:]), proposals)

    def tell(self, state: BanditState, archive, genotypes, fitnesses, descriptors, add_result) -> BanditState:
        """Tell each selected member its slice, update the statistics, choose the members of the next ``ask``.

        Args:
            genotypes: pytree with leading axis ``B = K * b`` (what :meth:`ask` returned).
            fitnesses: ``(B,)``; descriptors: ``(B, d)``; add_result: :class:`qd.AddResult` with ``(B,)`` fields.
        """
        k, b = self.num_active, self.member_batch_size
        emitter_states = list(state.emitter_states)
        # A member whose state has no arrays (Gaussian, iso+line) and no restarts() has nothing to learn:
        # its tell could only return that empty state again, so it is not called (and its slots count as
        # restarted, as pyribs takes a member without restarts to restart every iteration).
        idle = [
            not jax.tree_util.tree_leaves(emitter_states[g]) and not hasattr(self._group_emitter(g), "restarts")
            for g in range(len(self.groups))
        ]
        restarted = jnp.ones(k, bool)
        if not all(idle):
            per_slot = lambda x: x.reshape((k, b) + x.shape[1:])
            sliced = jax.tree_util.tree_map(per_slot, (genotypes, fitnesses, descriptors, add_result))
            for g, (slot, local, write) in enumerate(self._lanes(state.selected)):
                if idle[g]:
                    continue
                emitter = self._group_emitter(g)
                old = _take(emitter_states[g], local)
                args = jax.tree_util.tree_map(lambda x: x[slot], sliced)
                new = jax.vmap(emitter.tell, in_axes=(0, None, 0, 0, 0, 0))(old, archive, *args)
                if hasattr(emitter, "restarts"):
                    flag = jax.vmap(lambda n, o: jnp.asarray(emitter.restarts(n) > emitter.restarts(o)))(new, old)
                else:  # pyribs: an emitter without restarts is taken to restart every iteration
                    flag = jnp.ones(slot.shape, bool)
                # Unused lanes write nothing: their target index is out of range (``n_g``, ``K``) and dropped.
                emitter_states[g] = _put(emitter_states[g], write, new)
                restarted = restarted.at[jnp.where(write < len(self.groups[g]), slot, k)].set(flag, mode="drop")

        # Statistics: this iteration's row (pyribs: selection += n, success += count_nonzero(status)).
        added = add_result.status.reshape(self.num_active, b) != 0
        row_s = jnp.zeros(self.pool_size, jnp.int32).at[state.selected].add(added.sum(axis=1, dtype=jnp.int32))
        row_n = jnp.zeros(self.pool_size, jnp.int32).at[state.selected].add(b)
        if self.window is None:
            successes, candidates = state.successes + row_s, state.candidates + row_n
        else:
            at = state.iteration % self.window
            successes, candidates = state.successes.at[at].set(row_s), state.candidates.at[at].set(row_n)

        scores = ucb1_scores(successes.sum(axis=0), candidates.sum(axis=0), self.zeta)
        keep = jnp.zeros(self.pool_size, bool)
        if self.reselect == "terminated" and not all(idle):
            keep = keep.at[state.selected].set(~restarted)
        return BanditState(
            emitter_states=tuple(emitter_states),
            selected=choose(keep, scores, self.num_active),
            successes=successes,
            candidates=candidates,
            iteration=state.iteration + 1,
        )

    # ---------------------------------------------------------------------------------------- #
    def _group_emitter(self, g: int) -> Emitter:
        return self.emitters[self.groups[g][0]]

    def _lanes(self, selected: jax.Array):
        """For each configuration ``g`` (``n_g`` members), its ``m_g = min(K, n_g)`` lanes: ``(slot, local, write)``.

        The selected members are distinct, so at most ``m_g`` slots hold a member of ``g``; lane ``j`` runs
        the ``j``-th of them (ascending slot). ``slot (m_g,) int32``: that slot; ``local (m_g,) int32``: the
        member's index in the group's stacked states; ``write (m_g,) int32``: ``local``, or ``n_g`` (out of
        range) for an unused lane. An unused lane repeats lane 0's slot and member (its result is dropped; a
        copy of lane 0 cannot make a lazy CMA-ES decomposition due when lane 0's is not), or slot 0 and the
        group's first member when no slot holds one.
        """
        k = self.num_active
        group_of, local_of = self._tables()
        in_group = group_of[selected]  # (K,)
        lanes = []
        for g, members in enumerate(self.groups):
            n = len(members)
            m = min(k, n)
            if len(self.groups) == 1:  # every slot holds a member of the only group, in order
                slot = jnp.arange(k, dtype=jnp.int32)
                local = local_of[selected]
                lanes.append((slot, local, local))
                continue
            mask = in_group == g
            found = jnp.nonzero(mask, size=m, fill_value=k)[0].astype(jnp.int32)  # ascending slots, then k
            used = found < k
            slot = jnp.where(used, found, found[0] % k)  # found[0] is k only when no slot holds a member
            local = local_of[selected[slot]]
            local = jnp.where(used | (found[0] < k), local, 0)
            lanes.append((slot, local, jnp.where(used, local, n)))
        return lanes

    def _slot_positions(self, lanes) -> jax.Array:
        """``(K,) int32``: for each slot, the row of its lane in the concatenation of every group's lanes."""
        k = self.num_active
        position = jnp.zeros(k, jnp.int32)
        offset = 0
        for g, (slot, local, write) in enumerate(lanes):
            m = slot.shape[0]
            target = jnp.where(write < len(self.groups[g]), slot, k)
            position = position.at[target].set(offset + jnp.arange(m, dtype=jnp.int32), mode="drop")
            offset += m
        return position

    def _check_proposals(self, key, archive) -> None:
        shapes = []
        for g in range(len(self.groups)):
            e = self._group_emitter(g)
            out = jax.eval_shape(lambda k, e=e: e.ask(e.init(k, archive), archive, k), key)
            shapes.append(jax.tree_util.tree_map(lambda x: (x.shape, x.dtype), out))
        for g, s in enumerate(shapes[1:], start=1):
            if s != shapes[0]:
                a, b = self.groups[0][0], self.groups[g][0]
                raise ValueError(
                    f"BanditScheduler: members {a} ({type(self.emitters[a]).__name__}) and {b} "
                    f"({type(self.emitters[b]).__name__}) propose different genotypes (structure, shape, dtype): "
                    f"{shapes[0]} vs {s}"
                )


def _same(a, b) -> bool:
    """Whether two members have the same configuration (so they can share one traced branch)."""
    if a is b:
        return True
    if type(a) is not type(b):
        return False
    try:
        return bool(a == b) and hash(a) == hash(b)
    except Exception:  # unhashable or array-valued fields: keep them apart
        return False


def _take(tree, index):
    return jax.tree_util.tree_map(lambda x: x[index], tree)


def _put(tree, index, values):
    """``tree`` with rows ``index`` set to ``values``; rows whose index is out of range are not written."""
    return jax.tree_util.tree_map(lambda x, v: x.at[index].set(v.astype(x.dtype), mode="drop"), tree, values)
