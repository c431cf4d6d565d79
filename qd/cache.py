"""JAX's persistent compilation cache, so a second run skips most of its compile time."""

from __future__ import annotations

import os
from typing import Optional

import jax

ENV_VAR = "QD_JAX_CACHE_DIR"


def default_cache_dir() -> str:
    """``$QD_JAX_CACHE_DIR`` if set, else ``$XDG_CACHE_HOME/qd-jax/jax`` (``~/.cache/qd-jax/jax``)."""
    if os.environ.get(ENV_VAR):
        return os.environ[ENV_VAR]
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "qd-jax", "jax")


def enable_compilation_cache(path: Optional[str] = None, min_compile_time_s: float = 0.5) -> str:
    """Turn on JAX's persistent compilation cache (compiled programs are reused across processes).

    Args:
        path: cache folder; default :func:`default_cache_dir`. Created if missing.
        min_compile_time_s: only programs that took at least this long to compile are stored.

    Returns:
        The cache folder in use.

    Raises:
        ValueError: ``path`` exists and is not a folder, or ``min_compile_time_s`` is negative.

    Call it before the first compilation (JAX reads the setting when it first compiles).
    """
    path = os.path.abspath(os.path.expanduser(path or default_cache_dir()))
    if os.path.exists(path) and not os.path.isdir(path):
        raise ValueError(f"compilation cache path {path!r} exists and is not a folder")
    if min_compile_time_s < 0:
        raise ValueError(f"min_compile_time_s must be non-negative; got {min_compile_time_s}")
    os.makedirs(path, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", path)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", float(min_compile_time_s))
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return path
