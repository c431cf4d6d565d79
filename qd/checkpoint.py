"""Run state to and from plain numpy files, written atomically.

A state pytree is flattened into ``{path: array}`` (paths from ``jax.tree_util.keystr``) and saved with
``np.savez``; loading needs a template of the same structure (``jax.eval_shape`` of the algorithm's
``init`` gives one without computing anything). Nothing is pickled, so a checkpoint is readable with plain
numpy and survives library upgrades that keep the state layout.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
import zlib
from typing import Any, Dict, Optional, Tuple

import jax
import jax.numpy as jnp
import numpy as np

_META_KEY = "__metadata__"
_KEY_IMPL_SUFFIX = "#key_impl"


def _is_key(x) -> bool:
    return hasattr(x, "dtype") and jnp.issubdtype(x.dtype, jax.dtypes.prng_key)


def state_to_arrays(state: Any) -> Dict[str, np.ndarray]:
    """Flatten a pytree into ``{keypath: numpy array}`` (typed PRNG keys stored as their raw data)."""
    out = {}
    for path, leaf in jax.tree_util.tree_leaves_with_path(state):
        name = jax.tree_util.keystr(path)
        if _is_key(leaf):
            out[name + _KEY_IMPL_SUFFIX] = np.asarray(str(jax.random.key_impl(leaf)))
            leaf = jax.random.key_data(leaf)
        out[name] = np.asarray(leaf)
    return out


def arrays_to_state(arrays: Dict[str, np.ndarray], template: Any) -> Any:
    """Inverse of :func:`state_to_arrays` given a template (arrays or ``ShapeDtypeStruct`` leaves).

    Raises:
        ValueError: a leaf is missing or has a different shape than the template's.
    """
    paths_leaves, treedef = jax.tree_util.tree_flatten_with_path(template)
    leaves = []
    for path, leaf in paths_leaves:
        name = jax.tree_util.keystr(path)
        if name not in arrays:
            raise ValueError(f"checkpoint has no entry {name!r}; was it written by another configuration?")
        value = arrays[name]
        if _is_key(leaf):
            # The template may be abstract (``jax.eval_shape``), so the key's implementation is read from
            # the checkpoint, where it was stored by name.
            impl = str(arrays.get(name + _KEY_IMPL_SUFFIX, "threefry2x32"))
            value = jax.random.wrap_key_data(jnp.asarray(value), impl=impl)
        else:
            if tuple(value.shape) != tuple(leaf.shape):
                raise ValueError(f"checkpoint entry {name!r} has shape {value.shape}, expected {leaf.shape}")
            value = jnp.asarray(value, leaf.dtype)
        leaves.append(value)
    return jax.tree_util.tree_unflatten(treedef, leaves)


def atomic_savez(path: str, arrays: Dict[str, np.ndarray]) -> None:
    """``np.savez`` to a temporary file in the same folder, then rename over ``path`` (atomic on POSIX)."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, suffix=".tmp.npz")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def save_checkpoint(path: str, state: Any, metadata: Optional[Dict[str, Any]] = None) -> None:
    """Write ``state`` (any pytree) and JSON-serialisable ``metadata`` to ``path`` atomically."""
    arrays = state_to_arrays(state)
    arrays[_META_KEY] = np.asarray(json.dumps(metadata or {}))
    atomic_savez(path, arrays)


def load_checkpoint(path: str, template: Any) -> Tuple[Any, Dict[str, Any]]:
    """Read a checkpoint written by :func:`save_checkpoint`: ``(state, metadata)``.

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: ``path`` is a folder, or the file is empty, truncated, corrupt, not a ``.npz`` of arrays
            (e.g. an image renamed), has unreadable metadata, or does not match ``template`` (another
            configuration's checkpoint). The message starts with ``path``.
    """
    if os.path.isdir(path):
        raise ValueError(f"{path}: is a folder, not a checkpoint file")
    try:
        data = np.load(path, allow_pickle=False)
        if not isinstance(data, np.lib.npyio.NpzFile):  # a single array: an .npy file renamed
            raise ValueError("a single .npy array, not an .npz archive")
        with data:
            arrays = {k: data[k] for k in data.files}
    except FileNotFoundError:
        raise
    except (EOFError, zipfile.BadZipFile, zlib.error, OSError, ValueError, KeyError) as e:
        # EOFError: empty; BadZipFile/zlib.error/KeyError: truncated or corrupt zip; ValueError: not an .npz
        # (numpy refuses to unpickle other files); OSError: unreadable.
        problem = "empty file" if isinstance(e, EOFError) else f"not a readable checkpoint ({_one_line(e)})"
        raise ValueError(f"{path}: {problem}") from None
    try:
        metadata = json.loads(str(arrays.pop(_META_KEY, np.asarray("{}"))))
    except ValueError as e:
        raise ValueError(f"{path}: unreadable checkpoint metadata ({_one_line(e)})") from None
    if not isinstance(metadata, dict):
        raise ValueError(f"{path}: unreadable checkpoint metadata (not a mapping)")
    try:
        return arrays_to_state(arrays, template), metadata
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from None


def _one_line(text: Any) -> str:
    return " ".join(str(text).split())
