"""Saved archives that describe themselves: ``save_archive`` / ``load_archive`` and a tidy CSV export.

An archive file is a plain ``.npz`` (nothing pickled, readable with numpy alone). Beside the storage
arrays of :meth:`qd.Archive.to_dict` it holds:

- ``__archive__``: JSON with the format name and version, the archive's kind and static configuration
  (:meth:`qd.Archive.config`: bounds, ``qd_offset``, resolution or policy, ...) and the structure of the
  genotype and extras pytrees (the path, shape and dtype of every leaf). Configuration that is an array
  (a CVT's centroids) is stored as an array.
- ``__metadata__``: JSON given by the caller of :func:`save_archive` (e.g. the task and its descriptor
  names), read back with :func:`read_archive_metadata`.

So :func:`load_archive` rebuilds a grid, CVT, unstructured, AURORA container, DNS or threshold (CMA-MAE's
:class:`qd.archives.ThresholdGridArchive` / :class:`qd.archives.ThresholdCVTArchive`: their ``thresholds``
array beside the storage, ``learning_rate`` and ``threshold_min`` in the configuration) archive from the
file alone: no task, no config, no seed.
"""

from __future__ import annotations

import csv
import json
import os
import zipfile
from typing import Any, Dict, List, Optional

import jax
import jax.numpy as jnp
import numpy as np

from qd.archives.base import ARCHIVE_KEY, Archive

FORMAT = "qd-jax archive"
VERSION = 1
METADATA_KEY = "__metadata__"


# --------------------------------------------------------------------------------------------- #
# Pytree structure as JSON
# --------------------------------------------------------------------------------------------- #
def _encode_key(k) -> List[Any]:
    tu = jax.tree_util
    if isinstance(k, tu.DictKey):
        return ["dict", k.key]
    if isinstance(k, tu.SequenceKey):
        return ["seq", k.idx]
    if isinstance(k, tu.GetAttrKey):
        return ["attr", k.name]
    if isinstance(k, tu.FlattenedIndexKey):
        return ["seq", k.key]
    return ["attr", str(k)]


def _leaf_specs(tree: Any) -> Optional[List[Dict[str, Any]]]:
    if tree is None:
        return None
    return [
        {
            "name": jax.tree_util.keystr(path),
            "path": [_encode_key(k) for k in path],
            "shape": list(np.shape(leaf)),
            "dtype": str(np.asarray(leaf).dtype if not hasattr(leaf, "dtype") else leaf.dtype),
        }
        for path, leaf in jax.tree_util.tree_leaves_with_path(tree)
    ]


def _rebuild(specs: List[Dict[str, Any]], arrays: List[np.ndarray]) -> Any:
    """A nested dict/list pytree with ``arrays`` at the leaf paths of ``specs``.

    Mappings and attributes become dicts, sequences become lists (a custom pytree node is restored as
    the dict of its fields).
    """
    if len(specs) == 1 and not specs[0]["path"]:
        return arrays[0]
    root: Dict[Any, Any] = {}
    for spec, value in zip(specs, arrays):
        node = root
        keys = [tuple(k) for k in spec["path"]]
        for k in keys[:-1]:
            node = node.setdefault(k, {})
        node[keys[-1]] = value

    def finish(node):
        if not isinstance(node, dict):
            return node
        if all(kind == "seq" for kind, _ in node):
            return [finish(node[k]) for k in sorted(node, key=lambda k: k[1])]
        return {key: finish(child) for (_, key), child in node.items()}

    return finish(root)


_NON_FINITE = {"inf": float("inf"), "-inf": float("-inf"), "nan": float("nan")}


def _strict_json(value: Any) -> Any:
    """``value`` with its non-finite floats as the strings ``"inf"`` / ``"-inf"`` / ``"nan"`` (strict JSON
    has no infinities: an unbounded archive's ``-inf`` bounds would otherwise be written ``-Infinity``)."""
    if isinstance(value, dict):
        return {k: _strict_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_strict_json(v) for v in value]
    if isinstance(value, float) and not np.isfinite(value):
        return "nan" if np.isnan(value) else ("inf" if value > 0 else "-inf")
    return value


def _from_strict_json(value: Any) -> Any:
    """Inverse of :func:`_strict_json` (files written before it hold ``-Infinity``, which ``json`` reads too)."""
    if isinstance(value, dict):
        return {k: _from_strict_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_strict_json(v) for v in value]
    return _NON_FINITE.get(value, value) if isinstance(value, str) else value


def describe(archive: Archive) -> str:
    """The JSON description stored under ``__archive__`` in an archive's saved form (strict JSON: non-finite
    numbers of the configuration, e.g. an unbounded archive's bounds, are the strings ``"inf"`` / ``"-inf"``)."""
    return json.dumps(
        _strict_json({
            "format": FORMAT,
            "version": VERSION,
            "config": archive.config(),
            "genotypes": _leaf_specs(archive.genotypes),
            "extras": _leaf_specs(archive.extras),
        }),
        allow_nan=False,
    )


# --------------------------------------------------------------------------------------------- #
# Save / load
# --------------------------------------------------------------------------------------------- #
def save_archive(path: str, archive: Archive, metadata: Optional[Dict[str, Any]] = None) -> None:
    """Write ``archive`` (grid, CVT, unstructured, DNS or threshold) to ``path`` atomically (``.npz``).

    Args:
        path: the file to write (folders are created; an existing file is replaced atomically).
        archive: any :class:`qd.Archive`.
        metadata: optional JSON-serialisable dict stored beside it (:func:`read_archive_metadata`).

    Raises:
        TypeError: ``metadata`` is not JSON-serialisable.
    """
    from qd.checkpoint import atomic_savez

    arrays = archive.to_dict()
    arrays[METADATA_KEY] = np.asarray(json.dumps(metadata or {}))
    atomic_savez(path, arrays)


def _read(path: str) -> Dict[str, np.ndarray]:
    """All arrays of an archive file; errors name the file and the problem."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no such archive file")
    if os.path.isdir(path):
        raise ValueError(f"{path}: is a directory, not an archive file")
    try:
        data = np.load(path, allow_pickle=False)
        if not isinstance(data, np.lib.npyio.NpzFile):
            raise ValueError("it holds a single array, not an archive")
        with data:
            return {k: data[k] for k in data.files}
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError) as e:
        reason = str(e) or type(e).__name__
        raise ValueError(f"{path}: not a readable archive file (empty, truncated or another format: {reason})") from None


def _description(path: str, arrays: Dict[str, np.ndarray]) -> Dict[str, Any]:
    if ARCHIVE_KEY not in arrays:
        raise ValueError(f"{path}: not a qd-jax archive (no {ARCHIVE_KEY} entry; write it with qd.save_archive)")
    try:
        description = json.loads(str(arrays[ARCHIVE_KEY]))
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: the archive description is corrupt ({e})") from None
    if not isinstance(description, dict) or description.get("format") != FORMAT:
        raise ValueError(f"{path}: not a qd-jax archive (unknown format)")
    if description.get("version", 0) > VERSION:
        raise ValueError(f"{path}: archive format version {description['version']} is newer than this qd-jax reads ({VERSION})")
    if isinstance(description.get("config"), dict):
        description["config"] = _from_strict_json(description["config"])
    return description


def read_archive_metadata(path: str) -> Dict[str, Any]:
    """The metadata dict saved with an archive by :func:`save_archive` (``{}`` when there is none).

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: the file is not a readable qd-jax archive (the message names the file and problem).
    """
    arrays = _read(path)
    _description(path, arrays)
    try:
        metadata = json.loads(str(arrays.get(METADATA_KEY, np.asarray("{}"))))
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: the archive metadata is corrupt ({e})") from None
    return metadata if isinstance(metadata, dict) else {}


def load_archive(path: str, genotype_template: Any = None, extras_template: Any = None) -> Archive:
    """Rebuild the archive saved at ``path`` by :func:`save_archive` (or ``np.savez(**archive.to_dict())``).

    Args:
        path: an archive ``.npz`` file (e.g. a run directory's ``archive.npz``).
        genotype_template, extras_template: optional unbatched pytrees giving the genotype's (extras')
            exact pytree types. Without them, genotypes come back as nested dicts / lists of arrays with
            the saved paths (a flax parameter dict comes back as it was; a custom pytree node as the dict
            of its fields).

    Returns:
        A :class:`qd.GridArchive`, :class:`qd.CVTArchive`, :class:`qd.UnstructuredArchive`,
        :class:`qd.DominatedNoveltyArchive`, :class:`qd.archives.UnstructuredContainer`,
        :class:`qd.archives.ThresholdGridArchive` or :class:`qd.archives.ThresholdCVTArchive` equal to the
        saved one (same configuration, contents and, for the unstructured archive, PRNG key and counters;
        for AURORA's container, ``l`` and counters; for a threshold archive, its thresholds).

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: the file is empty, truncated, not an archive, of a newer format, or inconsistent with
            its description (the message names the file and the problem).
    """
    arrays = _read(path)
    description = _description(path, arrays)
    try:
        return _build(description, arrays, genotype_template, extras_template)
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"{path}: the archive is inconsistent with its description ({e})") from None


def _stored_tree(specs, arrays: Dict[str, np.ndarray], prefix: str):
    if specs is None:
        return None
    leaves = []
    for spec in specs:
        name = prefix + spec["name"]
        if name not in arrays:
            raise KeyError(f"no array {name!r}")
        leaves.append(np.asarray(arrays[name]))
    return _rebuild(specs, leaves)


def _template(tree):
    return None if tree is None else jax.tree_util.tree_map(lambda x: jnp.zeros(x.shape[1:], x.dtype), tree)


def _build(description, arrays, genotype_template, extras_template) -> Archive:
    from qd.archives.cvt import CVTArchive
    from qd.archives.dns import DominatedNoveltyArchive
    from qd.archives.grid import GridArchive
    from qd.archives.threshold import with_thresholds
    from qd.archives.unstructured import UnstructuredArchive
    from qd.archives.container import UnstructuredContainer

    config = description["config"]
    genotypes = _stored_tree(description["genotypes"], arrays, "genotypes")
    extras = _stored_tree(description["extras"], arrays, "extras")
    g_template = genotype_template if genotype_template is not None else _template(genotypes)
    e_template = extras_template if extras_template is not None else _template(extras)
    kind, lower, upper, offset = config["kind"], config["lower"], config["upper"], config["qd_offset"]
    threshold = kind in ("ThresholdGridArchive", "ThresholdCVTArchive")
    if threshold:
        kind = kind[len("Threshold"):]
    if kind == "GridArchive":
        archive = GridArchive.create(g_template, config["resolution"], lower, upper,
                                     extras_template=e_template, qd_offset=offset)
    elif kind == "CVTArchive":
        archive = CVTArchive.create(g_template, None, lower, upper, centroids=arrays["centroids"],
                                    extras_template=e_template, qd_offset=offset)
    elif kind == "UnstructuredArchive":
        bounded = np.isfinite(lower).all() and np.isfinite(upper).all()
        archive = UnstructuredArchive.create(
            g_template, config["capacity"], config["descriptor_dim"],
            lower=lower if bounded else None, upper=upper if bounded else None,
            policy=config["policy"], full_policy=config["full_policy"], num_per_batch=config["num_per_batch"],
            num_neighbors=config["num_neighbors"], extras_template=e_template, qd_offset=offset,
        )
    elif kind == "DominatedNoveltyArchive":
        bounded = np.isfinite(lower).all() and np.isfinite(upper).all()
        archive = DominatedNoveltyArchive.create(
            g_template, config["capacity"], config["descriptor_dim"],
            lower=lower if bounded else None, upper=upper if bounded else None,
            k=config["k"], extras_template=e_template, qd_offset=offset,
        )
    elif kind == "UnstructuredContainer":  # AURORA's container: l and counters come with the storage
        bounded = np.isfinite(lower).all() and np.isfinite(upper).all()
        archive = UnstructuredContainer.create(
            g_template, config["capacity"], config["descriptor_dim"],
            lower=lower if bounded else None, upper=upper if bounded else None,
            extras_template=e_template, qd_offset=offset,
        )
    else:
        raise ValueError(f"unknown archive kind {kind!r}")
    if archive.capacity != config["capacity"]:
        raise ValueError(f"capacity {archive.capacity} rebuilt, {config['capacity']} saved")
    if threshold:
        archive = with_thresholds(archive, config["learning_rate"], config["threshold_min"])
    if genotype_template is None:  # the rebuilt structure: put the stored arrays in directly
        archive = archive.replace(genotypes=jax.tree_util.tree_map(jnp.asarray, genotypes))
        if extras is not None and extras_template is None:
            archive = archive.replace(extras=jax.tree_util.tree_map(jnp.asarray, extras))
        kept = {k: v for k, v in arrays.items() if not k.startswith(("genotypes", "extras"))}
        restored = archive.replace(genotypes=None, extras=None).replace_storage_from_dict(kept)
        return restored.replace(genotypes=archive.genotypes, extras=archive.extras)
    return archive.replace_storage_from_dict(arrays)


# --------------------------------------------------------------------------------------------- #
# Tidy table
# --------------------------------------------------------------------------------------------- #
def elite_table(archive: Archive, include_genotypes: bool = False) -> Dict[str, np.ndarray]:
    """The elites as a tidy table: ``{column: (n,) array}``, one row per elite, in cell order.

    Columns: ``cell`` (int), ``fitness``, for a threshold archive (:mod:`qd.archives.threshold`)
    ``threshold`` (the cell's acceptance threshold), ``descriptor_0 .. descriptor_{d-1}``, and with
    ``include_genotypes`` ``genotype_0 .. genotype_{D-1}`` (every genotype leaf flattened and
    concatenated in pytree order). ``pandas.DataFrame(elite_table(archive))`` gives a data frame.
    """
    elites = archive.elites()
    table = {"cell": elites["cells"].astype(np.int64), "fitness": elites["fitnesses"].astype(np.float64)}
    thresholds = getattr(archive, "thresholds", None)
    if thresholds is not None:
        table["threshold"] = np.asarray(thresholds)[elites["cells"]].astype(np.float64)
    for j in range(archive.descriptor_dim):
        table[f"descriptor_{j}"] = elites["descriptors"][:, j].astype(np.float64)
    if include_genotypes:
        n = len(elites["cells"])
        leaves = [np.asarray(x).reshape(n, -1) for x in jax.tree_util.tree_leaves(elites["genotypes"])]
        flat = np.concatenate(leaves, axis=1) if leaves else np.zeros((n, 0))
        for j in range(flat.shape[1]):
            table[f"genotype_{j}"] = flat[:, j]
    return table


def export_csv(archive: Archive, path: str, include_genotypes: bool = False) -> None:
    """Write :func:`elite_table` to ``path`` as CSV (header row, then one row per elite; no pandas)."""
    table = elite_table(archive, include_genotypes)
    columns = list(table)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(columns)
        for row in zip(*(table[c] for c in columns)):
            writer.writerow([int(v) if c == "cell" else repr(float(v)) for c, v in zip(columns, row)])
