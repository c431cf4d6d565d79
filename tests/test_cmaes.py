"""The CMA-ES core (emitters.cmaes): convergence within the literature's evaluation counts, vmap ==
separate instances, stop criteria, restarts (basic / IPOP / BIPOP), clipping in high dimension.

Evaluation counts. Reference figures for CMA-ES with its default population (10 at 10-D), to
``f < 1e-8``: about 1,500 evaluations on the sphere, 6,000-7,000 on the ellipsoid of condition 1e6
(rotated or not: CMA-ES is rotation invariant) and 6,000-8,000 on Rosenbrock, as in Hansen &
Ostermeier, "Completely derandomized self-adaptation in evolution strategies" (ECJ 2001) and
Hansen's tutorial (arXiv:1604.00772) / pycma's test runs. Those figures are for the positive-weights
CMA-ES; the active update (negative weights, [T]'s default, ours) is known to be faster on the
ellipsoid. We allow a 25% margin on the median of 10 seeds and 60% on every single seed. Measured
here (10 seeds, medians): sphere 1,335, rotated ellipsoid 4,055 (4,155 with the eigh factor, 5,930
without the active update), Rosenbrock 5,260 evaluations.
"""

import numpy as np
import pytest

import jax
import jax.numpy as jnp
from jax import lax

from emitters.cmaes import CMAES, default_population

N = 10
_ROT = np.linalg.qr(np.random.default_rng(0).normal(size=(N, N)))[0].astype(np.float32)
_COND = (10.0 ** (6 * np.arange(N) / (N - 1))).astype(np.float32)


def sphere(x):
    return jnp.sum(x**2, -1)


def rotated_ellipsoid(x):
    return jnp.sum(_COND * (x @ _ROT.T) ** 2, -1)


def rosenbrock(x):
    return jnp.sum(100 * (x[..., 1:] - x[..., :-1] ** 2) ** 2 + (1 - x[..., :-1]) ** 2, -1)


def minimise(cma, f, x0, seeds=10, target=1e-8, max_iter=3000):
    """Run ``seeds`` vmapped instances until ``f < target``; (best (S,), evaluations (S,)) as NumPy."""

    def one(key):
        state = cma.init(key, x0)

        def cond(carry):
            _, _, best, it = carry
            return (best > target) & (it < max_iter)

        def body(carry):
            state, key, best, it = carry
            key, k_ask = jax.random.split(key)
            x, state = cma.ask(state, k_ask)
            v = f(x)
            state = cma.tell(state, x, cma.ranking(state, v), v)
            return state, key, jnp.minimum(best, v.min()), it + 1

        state, _, best, _ = lax.while_loop(cond, body, (state, key, jnp.inf, 0))
        return best, state.evaluations

    best, evals = jax.jit(jax.vmap(one))(jax.random.split(jax.random.key(1), seeds))
    return np.asarray(best), np.asarray(evals)


@pytest.mark.parametrize(
    "name, f, x0, sigma0, reference, options",
    [
        ("sphere", sphere, np.ones(N), 1.0, 1500, {}),
        ("rotated ellipsoid", rotated_ellipsoid, np.ones(N), 1.0, 7000, {}),
        ("rotated ellipsoid, eigh", rotated_ellipsoid, np.ones(N), 1.0, 7000, {"decomposition": "eigh"}),
        ("rotated ellipsoid, no active", rotated_ellipsoid, np.ones(N), 1.0, 7000, {"active": False}),
        ("rosenbrock", rosenbrock, np.zeros(N), 0.5, 8000, {}),
    ],
)
def test_reaches_1e_8_within_literature_counts(name, f, x0, sigma0, reference, options):
    cma = CMAES(N, sigma0=sigma0, **options)
    assert cma.population == default_population(N) == 10
    best, evals = minimise(cma, f, jnp.asarray(x0, jnp.float32))
    print(name, "evaluations: median", np.median(evals), "all", evals.tolist())
    assert np.all(best < 1e-8), (name, best)
    assert np.median(evals) <= 1.25 * reference, (name, evals)
    assert np.max(evals) <= 1.6 * reference, (name, evals)


def _run(cma, state, key, iterations, f=sphere):
    """``iterations`` ask/evaluate/tell steps of one instance, compiled as one scan."""

    def step(state, key):
        x, state = cma.ask(state, key)
        v = f(x)
        return cma.tell(state, x, cma.ranking(state, v), v), None

    return jax.jit(lambda s, k: lax.scan(step, s, jax.random.split(k, iterations))[0])(state, key)


@pytest.mark.parametrize("decomposition", ["cholesky", "eigh"])
def test_vmap_equals_separate_instances(decomposition):
    """Three instances, one restarted mid-run (so their lazy factorisations fall in different iterations).

    Equal up to float32 rounding: a batched matmul / factorisation may round differently from a single
    one, and 25 iterations amplify that to about 1e-5 (the same rankings, hence the same trajectory).
    """
    cma = CMAES(6, 8, 0.5, decomposition=decomposition, max_population=16, restart_rule="ipop")
    K, T = 3, 25
    keys = jax.random.split(jax.random.key(3), K)
    means = jax.random.normal(jax.random.key(4), (K, 6))

    def step(state, key, restart_now):
        k_ask, k_restart = jax.random.split(key)
        x, state = cma.ask(state, k_ask)
        v = rosenbrock(x)
        state = cma.tell(state, x, cma.ranking(state, v), v)
        return cma.restart_where(state, k_restart, jnp.zeros(6), restart_now)

    step_one = jax.jit(step)
    step_many = jax.jit(jax.vmap(step))
    separate = [cma.init(k, m) for k, m in zip(keys, means)]
    together = jax.vmap(cma.init)(keys, means)
    for t in range(T):
        step_keys = jax.random.split(jax.random.fold_in(jax.random.key(5), t), K)
        flags = jnp.array([False, t == 7, False])
        separate = [step_one(s, k, f) for s, k, f in zip(separate, step_keys, flags)]
        together = step_many(together, step_keys, flags)
    stacked = jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *separate)
    assert int(together.population[1]) == 16 and int(together.population[0]) == 8
    # The factorisations happened in different iterations for instance 1 and the others.
    assert len(set(np.asarray(together.decomposed_at).tolist())) > 1
    for field in ("mean", "sigma", "cov", "factor", "whiten", "p_sigma", "p_c"):
        np.testing.assert_allclose(getattr(together, field), getattr(stacked, field), rtol=1e-3, atol=1e-4, err_msg=field)
    for field in ("generation", "decomposed_at", "evaluations", "restarts", "population"):
        np.testing.assert_array_equal(getattr(together, field), getattr(stacked, field), err_msg=field)


def test_lazy_factorisation_is_not_run_every_iteration_under_vmap():
    """The batching rule keeps one ``cond`` around one batched factorisation (no ``select`` of both)."""
    cma = CMAES(5, 8, 0.5)
    states = jax.vmap(cma.init)(jax.random.split(jax.random.key(0), 4), jnp.zeros((4, 5)))
    x = jnp.zeros((4, 8, 5))
    ranking = jnp.tile(jnp.arange(8), (4, 1))
    text = str(jax.make_jaxpr(jax.vmap(cma.tell))(states, x, ranking))
    assert "cond[" in text and "cholesky" in text
    # Doubly vmapped (seeds x instances): still one cond.
    text2 = str(jax.make_jaxpr(jax.vmap(jax.vmap(cma.tell)))(*jax.tree_util.tree_map(lambda a: a[None], (states, x, ranking))))
    assert "cond[" in text2


def test_stop_criteria_fire_on_a_flat_function():
    dim = 5
    cma = CMAES(dim, sigma0=0.3)
    state = cma.init(None, jnp.zeros(dim))
    window = 10 + int(np.ceil(30 * dim / cma.population))
    stopped_at = None
    key = jax.random.key(0)
    step = jax.jit(lambda s, k: _run(cma, s, k, 1, f=lambda x: jnp.zeros(x.shape[0])))
    for it in range(1, 3 * window):
        key, k = jax.random.split(key)
        state = step(state, k)
        if cma.should_stop(state):
            stopped_at = it
            break
    criteria = {k: bool(v) for k, v in cma.stop_criteria(state).items()}
    assert stopped_at == window, (stopped_at, window, criteria)
    assert criteria["tol_fun"] and criteria["equal_fun"]
    assert not criteria["max_iter"] and not criteria["tol_x"]


def test_other_stop_criteria_on_hand_made_states():
    cma = CMAES(4, sigma0=1.0, max_iter=5)
    state = cma.init(None, jnp.ones(4))
    crit = cma.stop_criteria(state)
    assert not any(bool(v) for v in crit.values()) and not bool(cma.should_stop(state))
    assert bool(cma.stop_criteria(state.replace(generation=jnp.int32(5)))["max_iter"])
    tiny = cma.stop_criteria(state.replace(sigma=jnp.float32(1e-20)))
    assert bool(tiny["tol_x"]) and bool(tiny["no_effect_coord"]) and bool(tiny["no_effect_axis"])
    assert bool(cma.stop_criteria(state.replace(sigma=jnp.float32(1e5)))["tol_x_up"])
    stretched = state.replace(axis_std=jnp.array([1e-8, 1.0, 1.0, 1.0], jnp.float32))
    assert bool(cma.stop_criteria(stretched)["condition_cov"])
    assert bool(cma.should_stop(state.replace(mean=jnp.full(4, jnp.nan))))
    # Without values, the value-based criteria never fire (the histories stay empty).
    cma2 = CMAES(4, sigma0=1.0)
    s = cma2.init(None, jnp.zeros(4))
    def step(s, key):
        x, s = cma2.ask(s, key)
        return cma2.tell(s, x, jnp.arange(cma2.population)), None

    s = jax.jit(lambda s: lax.scan(step, s, jax.random.split(jax.random.key(0), 80))[0])(s)
    crit = cma2.stop_criteria(s)
    assert int(s.history_count) == 0
    assert not (bool(crit["tol_fun"]) or bool(crit["equal_fun"]) or bool(crit["stagnation"]))


def test_stagnation_fires_when_values_stop_improving():
    cma = CMAES(3, 6, 0.5)
    state = cma.init(None, jnp.zeros(3))
    base = 120 + int(np.ceil(30 * 3 / 6))
    x = jnp.zeros((6, 3))
    improving = jax.jit(lambda s, t: cma.tell(s, x, jnp.arange(6), -t - jnp.arange(6.0)))
    for t in range(base):
        state = improving(state, jnp.float32(t))
    assert not bool(cma.stop_criteria(state)["stagnation"])
    # Values that oscillate without a trend: stagnation (and not equal_fun).
    for t in range(base):
        state = improving(state, jnp.float32(base + (t % 2)))
    crit = cma.stop_criteria(state)
    assert bool(crit["stagnation"]) and not bool(crit["equal_fun"])


def test_restart_resets_what_it_must():
    cma = CMAES(4, 6, 0.7, max_population=20, restart_rule="ipop")
    state = _run(cma, cma.init(None, jnp.ones(4)), jax.random.key(0), 15)
    assert int(state.generation) == 15 and int(state.history_count) == 15
    new = cma.restart(state, jax.random.key(1), jnp.full(4, 3.0))
    np.testing.assert_array_equal(new.mean, 3.0)
    assert float(new.sigma) == pytest.approx(0.7) and float(new.sigma0) == pytest.approx(0.7)
    for field in ("cov", "factor", "whiten"):
        np.testing.assert_array_equal(getattr(new, field), np.eye(4))
    np.testing.assert_array_equal(new.axis_std, 1.0)
    np.testing.assert_array_equal(new.p_sigma, 0.0)
    np.testing.assert_array_equal(new.p_c, 0.0)
    assert int(new.generation) == int(new.decomposed_at) == int(new.evaluations) == int(new.history_count) == 0
    assert np.all(np.isinf(new.best_history)) and np.isinf(float(new.last_range))
    assert int(new.total_evaluations) == 15 * 6 and int(new.restarts) == 1
    # IPOP: the population doubles, up to max_population; the extra rows are masked out.
    assert int(new.population) == 12
    assert int(cma.restart(new, jax.random.key(2), jnp.zeros(4)).population) == 20
    assert np.asarray(cma.valid_mask(new)).sum() == 12
    x, _ = cma.ask(new, jax.random.key(3))
    assert x.shape == (20, 4)
    # Rows >= lambda in a ranking are moved last: the same update as ranking the population alone.
    v = sphere(x)
    full = np.argsort(np.asarray(v))
    population_first = np.argsort(np.where(np.arange(20) < 12, np.asarray(v), np.inf))
    a, b = cma.tell(new, x, jnp.asarray(full), v), cma.tell(new, x, jnp.asarray(population_first), v)
    np.testing.assert_allclose(a.cov, b.cov, rtol=1e-6)
    np.testing.assert_allclose(a.mean, b.mean, rtol=1e-6)
    # basic: same population and step size.
    basic = CMAES(4, 6, 0.7)
    assert int(basic.restart(state, jax.random.key(1), jnp.zeros(4)).population) == 6
    # restart_where under vmap: only the flagged instance restarts.
    states = jax.tree_util.tree_map(lambda a: jnp.stack([a, a]), state)
    out = jax.vmap(cma.restart_where)(states, jax.random.split(jax.random.key(4), 2), jnp.zeros((2, 4)), jnp.array([True, False]))
    assert out.generation.tolist() == [0, 15] and out.population.tolist() == [12, 6]


def test_bipop_alternates_regimes_by_budget():
    lam0, cap = 6, 48
    cma = CMAES(4, lam0, 1.0, max_population=cap, restart_rule="bipop")
    state = cma.init(None, jnp.zeros(4))
    history = []
    for r in range(8):
        # Pretend the run spent 10 iterations of its population.
        state = state.replace(evaluations=10 * state.population)
        state = cma.restart(state, jax.random.key(r), jnp.zeros(4))
        history.append((int(state.regime), int(state.population), float(state.sigma)))
    regimes = [h[0] for h in history]
    assert regimes[0] == 1 and int(history[0][1]) == 2 * lam0  # the first restart is large
    assert 2 in regimes  # small runs come in between
    large_pops = [p for g, p, _ in history if g == 1]
    assert large_pops == sorted(large_pops) and all(p <= cap for p in large_pops)
    for g, p, s in history:
        if g == 2:
            assert lam0 <= p <= cap and 1e-2 - 1e-7 <= s <= 1.0
        else:
            assert s == pytest.approx(1.0)
    # The budgets decide: small only while the small budget is below the large one.
    assert int(state.budget_large) > 0 and int(state.budget_small) > 0


def test_num_parents_zero_keeps_the_distribution():
    cma = CMAES(4, 8, 0.5)
    state = _run(cma, cma.init(None, jnp.ones(4)), jax.random.key(0), 3)
    x, _ = cma.ask(state, jax.random.key(1))
    new = cma.tell(state, x, jnp.arange(8), num_parents=0)
    for field in ("mean", "sigma", "cov", "p_sigma", "p_c", "generation"):
        np.testing.assert_array_equal(getattr(new, field), getattr(state, field))
    assert int(new.evaluations) == int(state.evaluations) + 8
    moved = cma.tell(state, x, jnp.arange(8), num_parents=3)
    assert not np.allclose(moved.mean, state.mean)


def test_clipping_keeps_samples_in_bounds_at_5000_d():
    dim = 5000
    cma = CMAES(dim, sigma0=2.0, lower=-1.0, upper=1.0)
    state = cma.init(None, jnp.full(dim, 0.9))
    ask, tell = jax.jit(cma.ask), jax.jit(cma.tell)
    for t in range(2):
        x, state = ask(state, jax.random.key(t))
        assert x.shape == (cma.population, dim)
        assert float(x.min()) >= -1.0 and float(x.max()) <= 1.0
        assert float(jnp.mean(jnp.abs(x) == 1.0)) > 0.3  # many coordinates were clipped, none resampled
        v = sphere(x)
        state = tell(state, x, cma.ranking(state, v), v)
        assert np.all(np.abs(np.asarray(state.mean)) <= 1.0)
        assert np.isfinite(float(state.sigma))


@pytest.mark.parametrize("shape", [(1,), (7,), (3, 36, 5), (15, 36, 100)])
def test_the_fast_sampler_draws_jax_random_normals_bit_for_bit(shape):
    """emitters.cmaes draws its samples with an unrolled threefry (JAX's CPU lowering of it is a rolled loop,
    ~3x slower); it must stay jax.random.normal's stream exactly, under jit and vmap (this fails if JAX
    changes its generator, and the fast path must then follow or go)."""
    from emitters.cmaes import _standard_normal

    keys = jax.random.split(jax.random.key(3), 4)
    for key in keys:
        np.testing.assert_array_equal(
            np.asarray(jax.jit(_standard_normal, static_argnums=(1, 2))(key, shape, jnp.float32)),
            np.asarray(jax.random.normal(key, shape, jnp.float32)),
        )
    batched = jax.vmap(lambda k: _standard_normal(k, shape, jnp.float32))(keys)
    np.testing.assert_array_equal(np.asarray(batched), np.asarray(jax.vmap(lambda k: jax.random.normal(k, shape))(keys)))
    raw = jax.random.PRNGKey(5)  # a raw uint32 key takes JAX's own path
    np.testing.assert_array_equal(np.asarray(_standard_normal(raw, shape, jnp.float32)),
                                  np.asarray(jax.random.normal(raw, shape, jnp.float32)))


def test_cholesky_without_the_inverse_factor_makes_the_same_updates():
    """Without negative weights and bounds the Cholesky core keeps no ``L^{-1}`` (``whiten`` is None) and
    whitens ``y_w`` by a triangular solve; a core that keeps ``L^{-1}`` (here: bounds nothing reaches)
    follows the same trajectory, up to float32 rounding, through several factorisations, under vmap.
    (Also the regression test of bounds with positive weights only: ``tell`` once built its on-bound mask
    for P rows and the steps for P // 2.)"""
    dim, lam, K = 8, 10, 3
    lean = CMAES(dim, lam, 0.5, active=False)
    full = CMAES(dim, lam, 0.5, active=False, lower=-1e30, upper=1e30)
    assert lean.init(None, jnp.zeros(dim)).whiten is None and full.init(None, jnp.zeros(dim)).whiten is not None

    def run(cma):
        def step(states, key):
            x, _ = jax.vmap(cma.ask)(states, jax.random.split(key, K))
            v = rotated_ellipsoid(jnp.pad(x, ((0, 0), (0, 0), (0, N - dim))))
            return jax.vmap(lambda s, x, v: cma.tell(s, x, cma.ranking(s, v), v))(states, x, v), None

        states = jax.vmap(cma.init)(jax.random.split(jax.random.key(0), K), jnp.ones((K, dim)))
        return jax.jit(lambda s: lax.scan(step, s, jax.random.split(jax.random.key(1), 30))[0])(states)

    a, b = run(lean), run(full)
    assert int(a.decomposed_at.min()) > 5  # refreshed several times
    for field in ("mean", "sigma", "cov", "factor", "axis_std", "p_sigma", "p_c"):
        np.testing.assert_allclose(getattr(a, field), getattr(b, field), rtol=2e-3, atol=2e-5, err_msg=field)
    np.testing.assert_array_equal(a.decomposed_at, b.decomposed_at)
