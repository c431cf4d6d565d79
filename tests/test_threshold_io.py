"""Saving and loading CMA-MAE's threshold archives (qd.archives.threshold, qd.archives.io): the file holds
the kind, learning rate, threshold_min (``-inf`` as the string ``"-inf"``: strict JSON), thresholds,
elites and a CVT's centroids, and the loaded archive's next add is the original's, bit for bit. Hand-made
batches on 4 x 2 cells whose contents are known."""

import csv
import json
import math

import jax.numpy as jnp
import numpy as np
import pytest

from qd import IMPROVED, NEW, NOT_ADDED, GridArchive, load_archive, save_archive
from qd.archives import ThresholdCVTArchive, ThresholdGridArchive, read_archive_metadata
from qd.archives.base import ARCHIVE_KEY

from _driver_checks import assert_same

LOWER, UPPER, RESOLUTION = (0.0, 0.0), (4.0, 2.0), (4, 2)
CENTRES = GridArchive.create(jnp.zeros(1), RESOLUTION, LOWER, UPPER).centroids()  # (8, 2), in cell order
GENOTYPE = {"w": jnp.zeros(3), "tag": jnp.zeros((), jnp.int32)}
EXTRAS = {"steps": jnp.zeros((), jnp.int32)}
SETTINGS = [(0.01, 0.0), (1.0, 0.0), (1.0, -math.inf)]


def make(kind, learning_rate, threshold_min):
    common = dict(extras_template=EXTRAS, qd_offset=-2.0, learning_rate=learning_rate, threshold_min=threshold_min)
    if kind == "grid":
        return ThresholdGridArchive.create(GENOTYPE, RESOLUTION, LOWER, UPPER, **common)
    return ThresholdCVTArchive.create(GENOTYPE, None, LOWER, UPPER, centroids=CENTRES, **common)


def batch(cells, fitnesses, first_tag):
    """Candidates at the centres of ``cells`` with ``fitnesses``; genotype ``w`` = (tag, cell, fitness)."""
    n = len(cells)
    tags = np.arange(first_tag, first_tag + n, dtype=np.int32)
    fitnesses = np.asarray(fitnesses, np.float32)
    w = np.stack([tags, cells, np.nan_to_num(fitnesses)], 1).astype(np.float32)
    genotypes = {"w": jnp.asarray(w), "tag": jnp.asarray(tags)}
    return genotypes, jnp.asarray(CENTRES[cells]), jnp.asarray(fitnesses), {"steps": jnp.asarray(10 * tags)}


# Batch 1: two candidates in cell 0 (2 and 4), cell 3 (1), cell 5 (-1: below a floor of 0), cell 7 (3), a
# NaN fitness in cell 6 (rejected).
FIRST = batch(np.array([0, 3, 0, 5, 7, 6]), [2.0, 1.0, 4.0, -1.0, 3.0, np.nan], 0)
# Batch 2: cell 0 (3.5), cell 3 (1, equal to a threshold of 1), cell 5 (0.5), cell 2 (-3), cell 7 twice (5, 5).
SECOND = batch(np.array([0, 3, 5, 2, 7, 7]), [3.5, 1.0, 0.5, -3.0, 5.0, 5.0], 100)


def expected_first(learning_rate, threshold_min):
    """(filled cells, their thresholds) after FIRST (the module docstring's batch rule, in float64)."""
    if threshold_min == -math.inf:  # CMA-ME: the threshold is the elite's fitness
        return [0, 3, 5, 7], [4.0, 1.0, -1.0, 3.0]
    accepted = {0: [2.0, 4.0], 3: [1.0], 7: [3.0]}  # fitness > 0
    out = []
    for cell, fits in accepted.items():
        ratio = (1.0 - learning_rate) ** len(fits)
        out.append(ratio * threshold_min + np.mean(fits) * (1.0 - ratio))
    return list(accepted), out


@pytest.mark.parametrize("learning_rate, threshold_min", SETTINGS, ids=["lr0.01-min0", "lr1-min0", "lr1-min-inf"])
@pytest.mark.parametrize("kind", ["grid", "cvt"])
def test_saved_threshold_archive_loads_exactly_and_adds_the_same(tmp_path, kind, learning_rate, threshold_min):
    archive, result = make(kind, learning_rate, threshold_min).add(*FIRST)
    cells, thresholds = expected_first(learning_rate, threshold_min)
    filled = np.asarray(archive.filled)
    assert list(np.nonzero(filled)[0]) == cells
    # float32 rounding, amplified ~50x by 1 - 0.99^n (a difference of numbers near 1) at lr 0.01
    np.testing.assert_allclose(np.asarray(archive.thresholds)[cells], thresholds, rtol=1e-5)
    assert np.all(np.asarray(archive.thresholds)[~filled] == np.float32(threshold_min))
    assert float(archive.fitnesses[0]) == 4.0 and int(archive.genotypes["tag"][0]) == 2
    assert int(result.cell[5]) == 6 and int(result.status[5]) == NOT_ADDED

    path = str(tmp_path / "opt" / "archive.npz")
    save_archive(path, archive, metadata={"algorithm": "CMAMAE", "alpha": learning_rate})
    loaded = load_archive(path)
    assert type(loaded) is type(archive)
    assert loaded.learning_rate == learning_rate and loaded.threshold_min == threshold_min
    assert_same(loaded, archive)  # every leaf (thresholds, elites, extras, centroids) and static field
    assert read_archive_metadata(path) == {"algorithm": "CMAMAE", "alpha": learning_rate}

    # The description is strict JSON (no -Infinity), threshold_min a float or "-inf".
    description = str(np.load(path)[ARCHIVE_KEY])
    config = json.loads(description, parse_constant=lambda c: pytest.fail(f"non-JSON constant {c}"))["config"]
    assert config["kind"] == type(archive).__name__ and config["learning_rate"] == learning_rate
    assert config["threshold_min"] == ("-inf" if threshold_min == -math.inf else threshold_min)

    # The next add: the same AddResult and the same archive, bit for bit.
    after, r1 = archive.add(*SECOND)
    after_loaded, r2 = loaded.add(*SECOND)
    assert_same((after_loaded, r2), (after, r1))
    assert not np.array_equal(np.asarray(after.thresholds), np.asarray(archive.thresholds))
    if learning_rate == 0.01:  # 3.5 beats cell 0's threshold ~0.06 and replaces the better elite 4
        assert int(r1.status[0]) == IMPROVED and float(after.fitnesses[0]) == 3.5
    assert int(r1.status[2]) == (IMPROVED if threshold_min == -math.inf else NEW)  # cell 5: -1 in it, or empty
    assert int(r1.status[4]) != NOT_ADDED and int(r1.status[5]) == NOT_ADDED  # a tie: the lowest index

    # np.savez(**to_dict()) is the same file format.
    np.savez(tmp_path / "plain.npz", **after.to_dict())
    assert_same(load_archive(str(tmp_path / "plain.npz")), after)


@pytest.mark.parametrize("kind", ["grid", "cvt"])
def test_csv_and_elite_table_carry_each_elites_threshold(tmp_path, kind):
    archive, _ = make(kind, 0.01, 0.0).add(*FIRST)
    path = tmp_path / "elites.csv"
    archive.to_csv(str(path))
    with open(path) as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["cell", "fitness", "threshold", "descriptor_0", "descriptor_1"]
    assert [int(r["cell"]) for r in rows] == [0, 3, 7]
    np.testing.assert_array_equal([float(r["threshold"]) for r in rows], np.asarray(archive.thresholds)[[0, 3, 7]])
    np.testing.assert_array_equal([float(r["fitness"]) for r in rows], [4.0, 1.0, 3.0])


@pytest.mark.parametrize("damage", ["no thresholds", "wrong shape", "bad threshold_min"])
def test_a_damaged_threshold_archive_file_names_the_file(tmp_path, damage):
    data = make("grid", 1.0, -math.inf).add(*FIRST)[0].to_dict()
    if damage == "no thresholds":
        del data["thresholds"]
    elif damage == "wrong shape":
        data["thresholds"] = data["thresholds"][:3]
    else:
        description = json.loads(str(data[ARCHIVE_KEY]))
        description["config"]["threshold_min"] = "minus infinity"
        data[ARCHIVE_KEY] = np.asarray(json.dumps(description))
    np.savez(tmp_path / "bad.npz", **data)
    with pytest.raises(ValueError, match=r"bad\.npz: the archive is inconsistent with its description"):
        load_archive(str(tmp_path / "bad.npz"))
