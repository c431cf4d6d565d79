"""Sparse-reward tasks: rewards are zero outside the goal areas and (r - d) / r inside, hand-designed policies
that reach a goal earn their reward, and the rendered image shows the final state where the ground truth
says it is. Budgets are tiny; each compiled rollout is shared through module-scoped fixtures."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from qd.tasks.sparse import Curling, HardMaze, Point2D, RedundantArm, SparseTask, area_reward, controller_num_params
from qd.tasks.sparse.common import BLUE, apply_controller, unflatten_controller
from qd.tasks.sparse import redundant_arm as arm_module
from qd.tasks.trig import sincos

TASKS = {
    "point2d": Point2D(),
    "curling": Curling(),
    "redundant_arm": RedundantArm(),
    "hard_maze": HardMaze(num_steps=400),  # shorter episodes keep the test fast; physics unchanged
}


@pytest.fixture(scope="module")
def evaluations():
    out = {}
    for name, task in TASKS.items():
        g = task.initial_genotypes(jax.random.key(1), 64)
        ev = jax.jit(task.evaluate)(g, None)
        out[name] = (task, g, ev)
    return out


def test_genome_sizes_match_the_original_controllers():
    assert [TASKS[n].num_params for n in ("curling", "hard_maze", "redundant_arm", "point2d")] == [94, 63, 228, 48]
    assert controller_num_params((29, 10, 10, 10, 8)) == 574  # AntMaze's


def test_controller_uses_scalar_bias_and_scaled_sigmoid():
    sizes = (2, 3, 1)
    genome = jnp.array([1.0, 0, 0, 1, 0, 0, 0.5, 1.0, 1.0, 1.0, -0.25])  # W1 (2x3), b1, W2 (3x1), b2
    layers = unflatten_controller(genome, sizes)
    x = jnp.array([0.3, -0.7])
    h = 2 * jax.nn.sigmoid(x @ genome[:6].reshape(2, 3) + 0.5) - 1
    want = 2 * jax.nn.sigmoid(h.sum() - 0.25) - 1
    np.testing.assert_allclose(np.asarray(apply_controller(layers, x)), [want], rtol=1e-6)
    assert float(jnp.max(unflatten_controller(jnp.full(11, 9.0), sizes)[0][0])) == 5.0  # genome clipped


def test_area_reward_formula():
    centres, radii = jnp.array([[0.0, 0.0], [3.0, 0.0]]), jnp.array([1.0, 0.5])
    pts = jnp.array([[0.0, 0.0], [0.5, 0.0], [1.01, 0.0], [3.0, 0.25], [10.0, 10.0]])
    r, a = area_reward(pts, centres, radii)
    np.testing.assert_allclose(np.asarray(r), [1.0, 0.5, 0.0, 0.5, 0.0], rtol=1e-6)
    np.testing.assert_array_equal(np.asarray(a), [0, 0, -1, 1, -1])


def test_redundant_arm_compacting_batch_matches_the_reference_episodes(evaluations):
    task, g, ev = evaluations["redundant_arm"]  # 64 genomes: one batch, compacted every REFILL_EVERY steps
    ref = jax.jit(lambda g: SparseTask.rollouts(task, g))(g)
    state = ev.extras["final_state"]
    np.testing.assert_array_equal(np.asarray(state["steps"]), np.asarray(ref[3]["steps"]))
    np.testing.assert_array_equal(np.asarray(state["terminated"]), np.asarray(ref[3]["terminated"]))
    np.testing.assert_allclose(np.asarray(ev.descriptors), np.asarray(ref[0]), atol=1e-5)
    assert 0 < int(np.sum(np.asarray(state["terminated"]))) < 64  # ended and full episodes side by side


@pytest.mark.parametrize("name", ["curling", "redundant_arm", "hard_maze"])
def test_reward_is_zero_outside_and_documented_inside(evaluations, name):
    task, _, ev = evaluations[name]
    gt = np.asarray(ev.extras["gt_descriptor"], np.float64)
    centres, radii = task.area_metrics_args()
    d = np.linalg.norm(gt[:, None] - centres[None], axis=-1)
    inside = d <= radii
    area = np.where(inside.any(1), inside.argmax(1), -1)
    want = np.where(area >= 0, (radii[area] - d[np.arange(len(gt)), area]) / radii[area], 0.0)
    np.testing.assert_allclose(np.asarray(ev.fitnesses), want, atol=1e-4)
    np.testing.assert_array_equal(np.asarray(ev.extras["reward_area"]), area)
    np.testing.assert_array_equal(np.asarray(ev.descriptors), np.asarray(ev.extras["gt_descriptor"]))
    lo, hi = task.descriptor_bounds
    assert np.all(gt >= np.asarray(lo) - 1e-6) and np.all(gt <= np.asarray(hi) + 1e-6)
    assert np.std(gt, axis=0).min() > 1e-3  # different genomes do different things


def test_point2d_reward_counts_steps_in_the_first_box_only():
    task = TASKS["point2d"]

    def policy(pose, t):  # go to box 0 (0.75, 0.75), then at t = 20 head for box 1 (-0.75, 0.75)
        target = jnp.where(t < 20, jnp.array([0.75, 0.75]), jnp.array([-0.75, 0.75]))
        return jnp.clip((target - pose) / 0.05, -1.0, 1.0)

    pose, reward, area, _ = jax.jit(lambda: task.episode(policy))()
    poses, p = [], np.zeros(2, np.float32)
    for t in range(50):  # the same trajectory in NumPy: count steps inside box 0
        target = np.array([0.75, 0.75] if t < 20 else [-0.75, 0.75], np.float32)
        p = np.clip(p + 0.05 * np.clip((target - p) / 0.05, -1, 1), -1, 1).astype(np.float32)
        poses.append(p.copy())
    in_box0 = sum(np.all(np.abs(q - 0.75) <= 0.15) for q in poses)
    assert int(area) == 0 and in_box0 > 10
    assert float(reward) == in_box0  # the later visit to box 1 earns nothing
    np.testing.assert_allclose(np.asarray(pose), [-0.75, 0.75], atol=1e-5)
    # A policy that never enters a box earns 0.
    _, reward, area, _ = task.episode(lambda pose, t: jnp.array([0.0, -1.0]))
    assert float(reward) == 0.0 and int(area) == -1


def test_curling_scripted_sweep_scores_in_the_big_goal():
    task = TASKS["curling"]

    def policy(obs, t):  # fold link 1, swing left of the ball, unfold, then sweep right at 0.6 rad/s
        a0 = jnp.where((t >= 120) & (t < 195), 1.0, jnp.where(t >= 315, -0.6, 0.0))
        a1 = jnp.where(t < 120, -1.0, jnp.where((t >= 195) & (t < 315), 1.0, 0.0))
        return jnp.stack([a0, a1])

    ball, reward, area, state = jax.jit(lambda: task.episode(policy))()
    d = np.linalg.norm(np.asarray(ball) - np.array([0.8, 0.8]))
    assert int(area) == 0 and d < 0.4
    assert float(reward) == pytest.approx((0.4 - d) / 0.4, abs=1e-5) and float(reward) > 0.5
    # Doing nothing leaves the ball at its start, outside both goals.
    ball, reward, area, _ = task.episode(lambda obs, t: jnp.zeros(2))
    np.testing.assert_allclose(np.asarray(ball), [-0.5, 0.2], atol=1e-6)
    assert float(reward) == 0.0 and int(area) == -1


def test_hard_maze_scripted_drive_reaches_the_second_goal():
    task = HardMaze()
    actions = []  # turn in place (0.1 rad per step), then drive straight (1 px per step), per waypoint
    x, y, th = 60.0, 450.0, np.pi / 4
    for wx, wy in [(150.0, 330.0), (100.0, 200.0)]:
        ang = np.arctan2(wy - y, wx - x)
        turn = (ang - th + np.pi) % (2 * np.pi) - np.pi
        k, s = int(abs(turn) / 0.1), np.sign(turn)
        actions += [(-s, s)] * k + [(-s * (abs(turn) / 0.1 - k), s * (abs(turn) / 0.1 - k))]
        dist = np.hypot(wx - x, wy - y)
        actions += [(1.0, 1.0)] * int(dist) + [(dist - int(dist),) * 2]
        x, y, th = wx, wy, ang
    actions = jnp.asarray(np.array(actions + [(0.0, 0.0)] * (2000 - len(actions)), np.float32))
    gt, reward, area, _ = jax.jit(lambda: task.episode(lambda obs, t: actions[t]))()
    np.testing.assert_allclose(np.asarray(gt) * 600, [100.0, 200.0], atol=1.0)
    assert int(area) == 1 and float(reward) > 0.95
    # Driving straight into the wall: the robot stops at the wall, no reward, bumpers fire.
    gt, reward, area, state = jax.jit(lambda: task.episode(lambda obs, t: jnp.array([1.0, 1.0])))()
    assert float(reward) == 0.0 and int(area) == -1
    walls_np, clearance = __import__("qd.tasks.sparse.hard_maze", fromlist=["maze_arrays"]).maze_arrays()
    px = np.floor(np.asarray(state["pose"][:2])).astype(int)
    assert 10.0 <= clearance[px[1], px[0]] < 11.5  # resting against a wall
    obs = task.sensors(jnp.asarray(walls_np), state["pose"])
    assert float(obs[1]) <= 0.15 and float(jnp.max(obs[3:])) == 1.0  # front laser at the body, a bumper on


def test_redundant_arm_illegal_moves_end_the_episode_and_reward_option():
    task = TASKS["redundant_arm"]
    q0 = jnp.asarray(arm_module.INITIAL_ANGLES)
    pts = arm_module.joint_positions(q0)
    assert bool(arm_module.is_legal(pts, pts[-1]))
    # Curling the arm up further makes it collide with itself: the episode stops early.
    tip, reward, area, state = jax.jit(lambda: task.episode(lambda obs, t: jnp.ones(20)))()
    assert bool(state["terminated"]) and 0 < int(state["steps"]) < 100
    assert bool(arm_module.is_legal(arm_module.joint_positions(state["joints"]), tip))  # last legal pose kept
    # Standing still is legal for the whole episode.
    tip, reward, area, state = jax.jit(lambda: task.episode(lambda obs, t: jnp.zeros(20)))()
    assert not bool(state["terminated"]) and int(state["steps"]) == 100
    np.testing.assert_allclose(np.asarray(tip), np.asarray(pts[-1]), atol=1e-6)
    # Fast and pair-by-pair legality checks agree on random configurations.
    q = q0 + jax.random.normal(jax.random.key(0), (2000, 20)) * 0.5
    p = jax.vmap(arm_module.joint_positions)(q)
    a = jax.jit(jax.vmap(arm_module.is_legal))(p, p[:, -1])
    b = jax.jit(jax.vmap(arm_module.is_legal_reference))(p, p[:, -1])
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert 0.05 < float(a.mean()) < 0.95


# --- NumPy brute-force reference of the redundant arm's legality rule (float64, pair by pair) --------------- #
def _orient(o, a, b):
    return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])


def _properly_cross(p1, p2, q1, q2):
    """Strict crossing: each segment's endpoints strictly on both sides of the other's line. Touching (an
    endpoint on the other segment) and colinear overlaps do not count: the documented choice of the port."""
    return _orient(q1, q2, p1) * _orient(q1, q2, p2) < 0 and _orient(p1, p2, q1) * _orient(p1, p2, q2) < 0


def _numpy_is_legal(points, previous_tip):
    points = np.asarray(points, np.float64)
    if np.any(points < 0.0) or np.any(points > 1.0):
        return False
    if np.sum((points[-1] - np.asarray(previous_tip, np.float64)) ** 2) > arm_module.MAX_TIP_STEP**2:
        return False
    links = len(points) - 1
    for k in range(links):
        if any(_properly_cross(points[k], points[k + 1], w[0], w[1]) for w in arm_module.WALLS.astype(np.float64)):
            return False
        for m in range(k + 2, links):  # adjacent links share a joint and are never tested
            if _properly_cross(points[k], points[k + 1], points[m], points[m + 1]):
                return False
    return True


def _numpy_joint_positions(q):
    a = np.cumsum(np.asarray(q, np.float64))
    steps = arm_module.LINK * np.stack([np.cos(a), np.sin(a)], axis=-1)
    return np.concatenate([[arm_module.ROOT], np.asarray(arm_module.ROOT) + np.cumsum(steps, axis=0)])


def test_redundant_arm_legality_matches_a_numpy_brute_force_reference():
    rng = np.random.default_rng(0)
    q = arm_module.INITIAL_ANGLES + rng.normal(size=(600, 20)).astype(np.float32) * np.float32(0.6)
    points = np.asarray(jax.vmap(arm_module.joint_positions)(jnp.asarray(q)))
    np.testing.assert_allclose(points, np.stack([_numpy_joint_positions(x) for x in q]), atol=2e-6)
    previous = points[:, -1] + rng.normal(size=(600, 2)).astype(np.float32) * np.float32(0.03)  # some too fast
    fast = np.asarray(jax.jit(jax.vmap(arm_module.is_legal))(jnp.asarray(points), jnp.asarray(previous)))
    want = np.array([_numpy_is_legal(p, t) for p, t in zip(points, previous)])
    np.testing.assert_array_equal(fast, want)
    assert 0.1 < want.mean() < 0.9  # both outcomes are exercised

    # Hand-made edge cases with exactly representable coordinates (float32 and float64 agree exactly).
    def arm(*xy):  # a 20-link polyline: the given joints, then the last one repeated (zero-length links)
        return np.array(list(xy) + [xy[-1]] * (21 - len(xy)), np.float32)

    cases = {
        "proper X crossing": (arm((0.25, 0.25), (0.75, 0.75), (0.75, 0.375), (0.25, 0.625)), False),
        "T-touch: a joint exactly on an earlier link":
            (arm((0.25, 0.25), (0.75, 0.25), (0.75, 0.5), (0.5, 0.5), (0.5, 0.25)), True),
        "colinear overlap of links 0 and 2 (the arm folds back onto itself)":
            (arm((0.25, 0.75), (0.75, 0.75), (0.5, 0.75), (0.375, 0.75)), True),
        "link 2 ending exactly on link 0, from below":
            (arm((0.25, 0.75), (0.75, 0.75), (0.625, 0.625), (0.375, 0.75)), True),
        "link 2 going through link 0": (arm((0.25, 0.75), (0.75, 0.75), (0.625, 0.625), (0.375, 0.875)), False),
        "joint exactly on a wall": (arm((0.5, 0.375), (0.125, 0.5), (0.125, 0.625)), True),
        "link crossing a wall": (arm((0.5, 0.375), (0.125, 0.375), (0.125, 0.625)), False),
        "joint exactly on the arena edge": (arm((0.5, 0.5), (0.5, 0.75), (0.0, 0.75)), True),
        "joint outside the arena": (arm((0.5, 0.5), (0.5, 0.75), (-0.125, 0.75)), False),
    }
    for name, (pts, legal) in cases.items():
        tip = pts[-1]
        assert _numpy_is_legal(pts, tip) is legal, name
        assert bool(arm_module.is_legal(jnp.asarray(pts), jnp.asarray(tip))) is legal, name
        assert bool(arm_module.is_legal_reference(jnp.asarray(pts), jnp.asarray(tip))) is legal, name


def test_redundant_arm_sincos_and_batched_rollouts_match_the_reference_episode():
    # sincos (qd.tasks.trig) over the arm's range of absolute link angles, densely
    a = np.linspace(-21 * np.pi, 21 * np.pi, 200_001).astype(np.float32)
    sin, cos = jax.jit(sincos)(jnp.asarray(a))
    assert np.abs(np.asarray(sin) - np.sin(a.astype(np.float64))).max() < 2e-7
    assert np.abs(np.asarray(cos) - np.cos(a.astype(np.float64))).max() < 2e-7
    # evaluate == the reference: every genome's episode with the common SERENE controller, one by one
    # (SparseTask.rollouts, vmapped); here for 300 genomes (workers taking new genomes beyond 256); for 64
    # (one batch compacting its running episodes) in test_redundant_arm_compacting_batch_matches_the_reference_episodes.
    task = TASKS["redundant_arm"]
    g = task.initial_genotypes(jax.random.key(7), 300)
    fast = jax.jit(task.evaluate)(g, None)
    ref = jax.jit(lambda g: SparseTask.rollouts(task, g))(g)
    state, ref_state = fast.extras["final_state"], ref[3]
    np.testing.assert_array_equal(np.asarray(state["steps"]), np.asarray(ref_state["steps"]))
    np.testing.assert_array_equal(np.asarray(state["terminated"]), np.asarray(ref_state["terminated"]))
    np.testing.assert_allclose(np.asarray(fast.descriptors), np.asarray(ref[0]), atol=1e-5)
    np.testing.assert_allclose(np.asarray(state["joints"]), np.asarray(ref_state["joints"]), atol=1e-5)
    np.testing.assert_array_equal(np.asarray(fast.extras["reward_area"]), np.asarray(ref[2]))
    # Every final configuration is legal for NumPy too, and its tip is the ground truth.
    joints = np.asarray(state["joints"])
    for i in range(0, 300, 10):
        pts = _numpy_joint_positions(joints[i])
        assert _numpy_is_legal(pts, pts[-1])
        np.testing.assert_allclose(pts[-1], np.asarray(fast.descriptors[i]), atol=2e-5)


def test_redundant_arm_hand_designed_genome_reaches_a_goal_and_earns_its_reward():
    """A hand-built controller: constant joint velocities ``a`` (so after the 100 steps ``q = q0 + a``) that
    rotate the base by 0.9 rad and unwind the spiral (joint i >= 1 by ``-0.5 + 0.035 i`` rad), ending with the
    tip in goal area 1 ``(0.85, 0.85)``. The three numbers come from a coarse grid search over this family of
    motions, checked legal at every step with the NumPy reference above. The network: layer 1 and 2 weights 0,
    layer-2 bias 5 (every hidden unit outputs ``c = 2 sigmoid(5) - 1``), output weights from hidden unit 0
    ``2 atanh(a_k) / c`` and output bias 0, so output k is ``2 sigmoid(c * w_k) - 1 = a_k``."""
    task = TASKS["redundant_arm"]
    a = np.concatenate([[0.9], -0.5 + 0.035 * np.arange(1, 20)])
    genome = np.zeros(task.num_params, np.float32)  # [W1 (20x5), b1, W2 (5x5), b2, W3 (5x20), b3]
    genome[20 * 5 + 1 + 25] = 5.0  # b2
    genome[127 : 127 + 20] = 2 * np.arctanh(a) / np.tanh(2.5)  # W3[0, :]
    assert np.abs(genome).max() <= 5.0
    ev = jax.jit(task.evaluate)(jnp.asarray(genome)[None], None)
    state = ev.extras["final_state"]
    assert not bool(state["terminated"][0]) and int(state["steps"][0]) == 100  # legal all the way
    np.testing.assert_allclose(np.asarray(state["joints"][0]), arm_module.INITIAL_ANGLES + a, atol=1e-4)
    tip = np.asarray(ev.descriptors[0], np.float64)
    d = np.linalg.norm(tip - np.array([0.85, 0.85]))
    assert int(ev.extras["reward_area"][0]) == 1 and d < 0.05
    assert float(ev.fitnesses[0]) == pytest.approx((0.05 - d) / 0.05, abs=1e-4) and float(ev.fitnesses[0]) > 0.8
    # The NumPy replay of the same motion is legal at every step and ends at the same place.
    previous = _numpy_joint_positions(arm_module.INITIAL_ANGLES)[-1]
    for t in range(1, 101):
        pts = _numpy_joint_positions(arm_module.INITIAL_ANGLES + a * t / 100)
        assert _numpy_is_legal(pts, previous), t
        previous = pts[-1]
    np.testing.assert_allclose(previous, tip, atol=1e-4)
    # With the original's rule (reward only when an illegal move ends the episode) this legal episode pays 0.
    ev = jax.jit(RedundantArm(reward_only_on_termination=True).evaluate)(jnp.asarray(genome)[None], None)
    assert float(ev.fitnesses[0]) == 0.0 and int(ev.extras["reward_area"][0]) == -1


def test_point2d_hand_designed_genome_goes_to_the_first_box_and_stays():
    """A hand-built proportional controller towards ``(0.75, 0.75)`` (box 0): hidden unit j of layer 1
    computes ``tanh(5 (0.75 - x_j) / 2)`` (weight -5 from input j, layer bias 3.75), layer 2 and the outputs
    pass units 0 and 1 through with weight 5 (biases 0), so each action is an increasing function of
    ``0.75 - x_j``, zero at the box centre."""
    task = TASKS["point2d"]
    genome = np.zeros(task.num_params, np.float32)  # [W1 (2x5), b1, W2 (5x5), b2, W3 (5x2), b3]
    genome[0 * 5 + 0] = genome[1 * 5 + 1] = -5.0  # W1
    genome[10] = 3.75  # b1
    genome[11 + 0 * 5 + 0] = genome[11 + 1 * 5 + 1] = 5.0  # W2
    genome[37 + 0 * 2 + 0] = genome[37 + 1 * 2 + 1] = 5.0  # W3
    ev = jax.jit(task.evaluate)(jnp.asarray(genome)[None], None)
    # The same controller and dynamics in NumPy: count the steps spent in box 0.
    f = lambda z: 2.0 / (1.0 + np.exp(-z)) - 1.0
    pose, inside = np.zeros(2), 0
    for _ in range(task.num_steps):
        h1 = f(np.concatenate([-5.0 * pose, np.zeros(3)]) + 3.75)
        h2 = f(5.0 * np.concatenate([h1[:2], np.zeros(3)]))
        pose = np.clip(pose + 0.05 * f(5.0 * h2[:2]), -1.0, 1.0)
        inside += bool(np.all(np.abs(pose - 0.75) <= 0.15))
    np.testing.assert_allclose(np.asarray(ev.descriptors[0]), pose, atol=1e-5)
    np.testing.assert_allclose(pose, [0.75, 0.75], atol=1e-3)
    assert int(ev.extras["reward_area"][0]) == 0 and inside > 30
    assert float(ev.fitnesses[0]) == inside  # one point per step inside the first box entered


def test_redundant_arm_reward_only_on_termination_option():
    # A goal placed at the tip of the initial spiral: standing still ends there.
    task = RedundantArm(reward_only_on_termination=False)
    faithful = RedundantArm(reward_only_on_termination=True)
    tip0 = np.asarray(arm_module.joint_positions(jnp.asarray(arm_module.INITIAL_ANGLES))[-1])
    old = arm_module._GOALS.copy()
    try:
        arm_module._GOALS[0] = tip0
        _, r, a, _ = task.episode(lambda obs, t: jnp.zeros(20))
        _, r2, a2, _ = faithful.episode(lambda obs, t: jnp.zeros(20))
    finally:
        arm_module._GOALS[:] = old
    assert float(r) == pytest.approx(1.0, abs=1e-4) and int(a) == 0
    assert float(r2) == 0.0 and int(a2) == -1  # no env "done" fired: the original pays nothing


@pytest.mark.parametrize("name", ["point2d", "curling", "redundant_arm", "hard_maze"])
def test_rendered_image_shows_the_final_state_at_the_ground_truth(evaluations, name):
    task, _, ev = evaluations[name]
    i = 0
    state = jax.tree_util.tree_map(lambda x: x[i : i + 1], ev.extras["final_state"])
    image = np.asarray(jax.jit(task.render)(state))[0]
    assert image.shape == (64, 64, 3) and image.min() >= 0.0 and image.max() <= 1.0
    blue = np.all(np.isclose(image, BLUE), axis=-1)
    assert blue.sum() > 0
    lo, hi = (np.asarray(b, np.float64) for b in task.descriptor_bounds)
    if name in ("curling",):
        lo, hi = np.array([-1.5, -1.5]), np.array([1.5, 1.5])
    gt = np.asarray(ev.extras["gt_descriptor"][i], np.float64)
    col = (gt[0] - lo[0]) / (hi[0] - lo[0]) * 64
    row = (gt[1] - lo[1]) / (hi[1] - lo[1]) * 64
    if name != "hard_maze":  # image row 0 is the top (largest y), except in the maze's image frame
        row = 64 - row
    rows, cols = np.nonzero(blue)
    # The blue pixel nearest to where the ground truth maps lies within 2 pixels of it (the agent marker).
    assert np.min(np.hypot(rows + 0.5 - row, cols + 0.5 - col)) < 2.0
