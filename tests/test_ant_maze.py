"""AntMaze (qd.tasks.sparse.ant_maze): the walls are in the Brax system and stop the torso, the reward is zero
outside the goal areas and (3 - d) / 3 inside, descriptors stay within bounds, the rendered image shows the ant
where the ground truth says and the walls where they are, evaluations are deterministic, and ``qd run`` builds.

Cheap by construction: short episodes, a tiny population, one compiled evaluation shared by the module."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from qd.tasks.sparse import AntMaze
from qd.tasks.sparse import ant_maze as am
from qd.tasks.sparse.common import BLACK, BLUE, RED, pixel_centres

NUM_STEPS = 40  # 1 s of simulated time: enough for random controllers to move the ant


@pytest.fixture(scope="module")
def task():
    return AntMaze(num_steps=NUM_STEPS)


# Manual runs of the environment, 40 control steps each: the ant thrown at 6 m/s (towards -x, motors off) against
# the west border wall and the first inner wall (x = -15), and the ant from its start state under a constant
# control, the one the CONSTANT genome's controller outputs (all weights 0, last bias 1: 2 sigmoid(1) - 1).
MANUAL_STARTS = np.array([[-28.5, -25.0, -6.0], [-14.0, 10.0, -6.0], [-25.0, -25.0, 0.0]], np.float32)
CONSTANT_ACTION = 2.0 / (1.0 + np.exp(-1.0)) - 1.0


def _manual(env, start, action):
    """Torso x-y ``(40, 2)`` after each of 40 control steps from ``start = (x, y, vx)`` under ``action``."""
    sys = env.sys
    q = sys.init_q.at[:2].set(start[:2])
    ps = env.pipeline.init(sys, q, jnp.zeros(sys.qd_size()).at[0].set(start[2]))
    state = am.AntMazeState(ps, (env.observation(ps), jnp.zeros((), jnp.int32)), jnp.zeros(()), jnp.zeros(()))

    def body(s, _):
        s = env.step(s, jnp.full(8, action))
        return s, s.pipeline_state.x.pos[0, :2]

    return jax.lax.scan(body, state, None, length=NUM_STEPS)[1]


@pytest.fixture(scope="module")
def evaluation(task):
    """``(genomes, run, (evaluation, manual torso x-y (3, 40, 2)))``: one compiled function serves every test
    (compiling the Brax step is most of this file's time). Genome 0 is the CONSTANT genome."""
    genomes = task.initial_genotypes(jax.random.key(3), 6)
    genomes = genomes.at[0].set(jnp.zeros(task.num_params).at[-1].set(1.0))
    actions = jnp.array([0.0, 0.0, CONSTANT_ACTION])

    def run(g, k):
        return task.evaluate(g, k), jax.vmap(lambda s, a: _manual(task.env, s, a))(MANUAL_STARTS, actions)

    run = jax.jit(run)
    return genomes, run, run(genomes, jax.random.key(0))


def test_controller_and_areas_follow_serene(task):
    assert task.num_params == 574  # 29 -> 3x10 -> 8, one scalar bias per layer
    assert task.genotype_bounds == (-5.0, 5.0) and task.num_reward_areas == 2
    assert AntMaze().num_steps == 3000  # SERENE's episode
    np.testing.assert_allclose(task.goal_centres, [[30 / 70, -30 / 70], [-30 / 70, 30 / 70]], rtol=1e-6)
    np.testing.assert_allclose(task.goal_radii, [3 / 70, 3 / 70], rtol=1e-6)
    with pytest.raises(ValueError):
        AntMaze(num_steps=0)
    with pytest.raises(ValueError):
        AntMaze(backend="bullet")


def test_system_has_the_walls_as_colliding_boxes(task):
    from mujoco import mjx

    sys = task.env.sys
    boxes = np.asarray(sys.geom_type) == int(mjx.GeomType.BOX)
    colliding = (np.asarray(sys.geom_contype) | np.asarray(sys.geom_conaffinity)) > 0
    walls = boxes & colliding
    got = np.concatenate([np.asarray(sys.geom_pos)[walls, :2], np.asarray(sys.geom_size)[walls, :2]], axis=1)
    np.testing.assert_allclose(got[np.lexsort(got.T)], am.WALLS[np.lexsort(am.WALLS.T)], atol=1e-5)
    assert np.all(np.asarray(sys.geom_size)[walls, 2] == 2.0)  # 4 m high
    assert np.sum(boxes & ~colliding) == 2  # the goal markers
    # contact pairs: torso with floor + 7 walls, 4 feet with the floor
    assert int(mjx.make_data(sys).ncon) == 12
    np.testing.assert_allclose(np.asarray(sys.init_q[:3]), [-25.0, -25.0, 0.6])


def test_walls_stop_the_torso(evaluation):
    """The thrown torso stops at the wall face (plus its 0.25 m radius) instead of passing through."""
    xs = np.asarray(evaluation[2][1])[:2, :, 0]
    # free flight would cover about 6 m; the faces are at x = -29.7 (border) and x = -14.7 (inner wall)
    assert xs[0].min() > -29.7 + 0.2 and xs[1].min() > -14.7 + 0.2
    assert xs[0].min() < -29.0 and xs[1].min() < -14.3  # they did reach the walls


def test_episode_is_num_steps_control_steps_from_the_start_state(evaluation):
    """The task's final position is the environment's after exactly ``num_steps`` steps of the controller."""
    ev, manual = evaluation[2]
    xy, path = np.asarray(ev.extras["final_state"]["xy"][0]), np.asarray(manual[2])
    np.testing.assert_allclose(xy, path[-1], atol=1e-4)
    assert np.linalg.norm(path[-1] - path[-2]) > 1e-3  # still moving: one step more or less would show


def test_reward_is_zero_outside_the_goals_and_documented_inside():
    goals = np.array([[35.0, -25.0], [-25.0, 35.0]])
    pts = np.array(
        [
            goals[0],  # centre of goal 0
            goals[0] + [1.5, 0.0],  # halfway to the rim
            goals[1] + [0.0, -2.25],  # a quarter of the radius from the rim of goal 1
            goals[1] + [3.01, 0.0],  # just outside
            [-25.0, -25.0],  # the start
            [39.0, 39.0],  # an empty corner
            [np.nan, 0.0],  # a diverged simulation
        ],
        np.float32,
    )
    reward, area = AntMaze.reward(jnp.asarray(pts))
    np.testing.assert_allclose(np.asarray(reward), [1.0, 0.5, 0.25, 0.0, 0.0, 0.0, 0.0], atol=1e-5)
    np.testing.assert_array_equal(np.asarray(area), [0, 0, 1, -1, -1, -1, -1])
    gt = np.asarray(AntMaze.descriptor(jnp.asarray(pts)))
    np.testing.assert_allclose(gt[:6], (pts[:6] - 5.0) / 70.0, rtol=1e-6)
    np.testing.assert_allclose(gt[6], [-30 / 70, -30 / 70], rtol=1e-6)


def test_evaluation_matches_the_final_positions(task, evaluation):
    ev = evaluation[2][0]
    xy = np.asarray(ev.extras["final_state"]["xy"], np.float64)
    assert ev.fitnesses.shape == (6,) and ev.descriptors.shape == (6, 2) and ev.descriptors.dtype == jnp.float32
    assert np.all(np.isfinite(xy))
    np.testing.assert_allclose(np.asarray(ev.descriptors), (xy - 5.0) / 70.0, atol=1e-6)
    np.testing.assert_array_equal(np.asarray(ev.descriptors), np.asarray(ev.extras["gt_descriptor"]))
    lo, hi = task.descriptor_bounds
    assert np.all(np.asarray(ev.descriptors) >= lo) and np.all(np.asarray(ev.descriptors) <= hi)
    # one second from (-25, -25): the ants moved, differently, and stayed far from the goals (60 m away)
    moved = np.linalg.norm(xy - [-25.0, -25.0], axis=1)
    assert moved.max() > 0.05 and np.std(xy, axis=0).min() > 1e-3 and moved.max() < 10.0
    np.testing.assert_array_equal(np.asarray(ev.fitnesses), 0.0)
    np.testing.assert_array_equal(np.asarray(ev.extras["reward_area"]), -1)


def test_evaluation_is_deterministic(evaluation):
    genomes, run, (ev, _) = evaluation
    again = run(genomes, jax.random.key(7))[0]  # the key is unused: one fixed start state
    np.testing.assert_array_equal(np.asarray(again.descriptors), np.asarray(ev.descriptors))
    np.testing.assert_array_equal(np.asarray(again.fitnesses), np.asarray(ev.fitnesses))
    # a genome's outcome does not depend on the rest of the batch
    first = run(jnp.concatenate([genomes[:1]] * 6), jax.random.key(0))[0]
    np.testing.assert_allclose(np.asarray(first.descriptors[0]), np.asarray(ev.descriptors[0]), atol=1e-6)


def _colour_mask(image, colour):
    return np.all(np.abs(image - np.asarray(colour)) < 1e-6, axis=-1)


def test_render_shows_the_ant_where_the_descriptor_says_and_the_walls(task, evaluation):
    ev = evaluation[2][0]
    hand = {"xy": jnp.array([[20.0, 25.0], [-25.0, -25.0]], jnp.float32)}
    states = jax.tree_util.tree_map(lambda a, b: jnp.concatenate([a, b]), ev.extras["final_state"], hand)
    images = np.asarray(jax.jit(task.render)(states))
    assert images.shape == (8, 64, 64, 3) and images.dtype == np.float32
    assert images.min() >= 0.0 and images.max() <= 1.0
    pixels = np.asarray(pixel_centres(am.VIEW_LOWER, am.VIEW_UPPER))
    world_gt = np.concatenate([np.asarray(ev.descriptors) * 70.0 + 5.0, np.asarray(hand["xy"])])
    for image, xy in zip(images, world_gt):
        ant = _colour_mask(image, BLUE)
        assert 4 <= ant.sum() <= 30  # a disc of 1.6 m on 1.1 m pixels
        np.testing.assert_allclose(pixels[ant].mean(axis=0), xy, atol=1.2)  # within about a pixel
        walls = _colour_mask(image, BLACK)
        for cx, cy, _, _ in am.WALLS:  # every wall's centre pixel is black
            i, j = np.unravel_index(np.argmin(np.sum((pixels - [cx, cy]) ** 2, axis=-1)), walls.shape)
            assert walls[i, j]
        assert np.all(walls[:, 0]) and np.all(walls[:, -1]) and np.all(walls[0]) and np.all(walls[-1])
        assert 0.07 < walls.mean() < 0.13  # the border (252 pixels) + 3 inner walls (about 80 m long), nothing else
        goal = _colour_mask(image, RED)
        np.testing.assert_allclose(pixels[goal].mean(axis=0), [5.0, 5.0], atol=0.6)  # the two goals, symmetric
        assert not walls[np.isclose(pixels[..., 0], 20.0, atol=0.6) & np.isclose(pixels[..., 1], 25.0, atol=0.6)].any()


@pytest.mark.parametrize("algorithm", ["ns", "random", "map_elites"])
def test_qd_run_builds_an_ant_maze_job(algorithm):
    """``qd run --task ant_maze`` wiring (registry defaults, task options, ground-truth bounds), built without
    running: a first end-to-end run compiles for about a minute on 2 cores (``qd run --algorithm random --task
    ant_maze --task-option num_steps=5 --iterations 2 --batch-size 4`` works; not repeated here)."""
    from qd.config import resolve_config
    from qd.runner import build_job

    config = resolve_config({"algorithm": algorithm, "task": "ant_maze", "task_options": {"num_steps": 5}})
    assert config["batch_size"] == 200 and config["archive"]["resolution"] == [50, 50]
    assert config["emitter"] == [{"name": "gaussian", "sigma": 0.05}]
    assert algorithm != "ns" or config["algorithm"] == {"name": "ns", "sigma": 0.05, "descriptor": "task", "trajectory_samples": 10, "signature_depth": 2}
    job = build_job(config)
    assert isinstance(job.task, AntMaze) and job.task.num_steps == 5
    assert resolve_config({"task": "ant_maze"})["task_options"] == {"num_steps": 250}
