"""Sparse-reward tasks: rewards are zero outside the goal areas and (r - d) / r inside, hand-designed policies
that reach a goal earn their reward, and the rendered image shows the final state where the ground truth
says it is. Budgets are tiny; each compiled rollout is shared through module-scoped fixtures."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from qd.tasks.sparse import Curling, HardMaze, Point2D, RedundantArm, area_reward, controller_num_params
from qd.tasks.sparse.common import BLUE, apply_controller, unflatten_controller
from qd.tasks.sparse import redundant_arm as arm_module

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
