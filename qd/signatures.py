"""Path signatures of trajectories: behaviour descriptors of *how* an agent moved, not only where it ended.

The signature of a path ``X: [0, 1] -> R^C`` is the sequence of its iterated integrals
``S(X)^{i_1..i_k} = integral_{0 < t_1 < ... < t_k < 1} dX^{i_1}_{t_1} ... dX^{i_k}_{t_k}``, truncated at a depth
``m`` (levels ``k = 1..m``, ``C^k`` terms each). For a piecewise-linear path through points ``X_0 .. X_N``
(increments ``D_k = X_k - X_{k-1}``):

- level 1 is the total increment ``X_N - X_0``;
- level 2 is ``sum_k (X_{k-1} - X_0) (x) D_k + 1/2 D_k (x) D_k``; its antisymmetric part is the signed (Levy)
  area swept by each pair of channels, so paths with the same end points but different shapes differ;
- deeper levels follow by Chen's identity. The signature does not depend on the path's starting point
  (translation invariance) nor on its speed (reparametrisation invariance); appending time as a channel
  (``time_channel``) makes it see the speed too.

The log-signature (``log=True``) is the same information without redundancy: the coordinates of the
tensor logarithm of the signature in the Lyndon basis (fewer terms, e.g. ``C + C(C-1)/2`` at depth 2).

Source: G. Paolo's PhD thesis, "Learning in Sparse Rewards settings through Quality-Diversity algorithms"
(arXiv 2203.01027), which compares the final-frame descriptor with trajectory signatures (``SIGN``, and
``TIME-SIGN`` with a time channel); his STAX code computes them with ``iisignature``. Here they are computed
in JAX by ``signax`` (``signax.signature`` / ``signax.logsignature`` on ``(B, T, C)`` paths, flattened level
after level, C-ordered within a level, no basepoint: a path starts at its first point).
"""

from __future__ import annotations

from typing import Any, Optional

import jax.numpy as jnp
import numpy as np

__all__ = ["signature_dim", "trajectory_signature"]


def _check_depth(depth: Any) -> int:
    if isinstance(depth, (bool, np.bool_)) or not isinstance(depth, (int, np.integer)) or depth < 1:
        raise ValueError(f"signature depth must be an integer >= 1; got {depth!r}")
    return int(depth)


def _mobius(n: int) -> int:
    result, p = 1, 2
    while p * p <= n:
        if n % p == 0:
            n //= p
            if n % p == 0:
                return 0
            result = -result
        p += 1
    return -result if n > 1 else result


def signature_dim(channels: int, depth: int = 2, log: bool = False, time_channel: bool = False) -> int:
    """Length of :func:`trajectory_signature`'s output for paths of ``channels`` channels.

    ``c = channels + time_channel``; the signature has ``c + c^2 + ... + c^depth`` terms; the log-signature one
    per Lyndon word of length ``<= depth`` over ``c`` letters (Witt's formula,
    ``sum_k (1/k) sum_{d | k} mu(d) c^(k/d)``).

    Raises:
        ValueError: ``channels < 1`` or ``depth < 1``.
    """
    if isinstance(channels, (bool, np.bool_)) or not isinstance(channels, (int, np.integer)) or channels < 1:
        raise ValueError(f"signature channels must be an integer >= 1; got {channels!r}")
    depth = _check_depth(depth)
    c = int(channels) + int(bool(time_channel))
    if not log:
        return sum(c**k for k in range(1, depth + 1))
    return sum(sum(_mobius(d) * c ** (k // d) for d in range(1, k + 1) if k % d == 0) // k for k in range(1, depth + 1))


def trajectory_signature(
    trajectory: Any,
    depth: int = 2,
    log: bool = False,
    time_channel: bool = False,
    basepoint: Optional[Any] = None,
):
    """Truncated (log-)signatures of a batch of sampled trajectories, as behaviour descriptors.

    Args:
        trajectory: ``(B, T, C)`` points of each path (e.g. a task's ``extras["trajectory"]``, ``(B, S, 2)``),
            joined by straight segments.
        depth: truncation level ``m >= 1`` (2: increments and areas).
        log: the log-signature (Lyndon basis) instead of the signature.
        time_channel: append normalised time ``t / (T' - 1)`` in ``[0, 1]`` as a last channel (``T'`` the
            number of points, basepoint included), the thesis' TIME-SIGN.
        basepoint: optional ``(C,)`` or ``(B, C)`` point prepended to every path (e.g. the start position
            every episode shares, so that the first segment counts); None: the path starts at its first point.

    Returns:
        ``(B, signature_dim(C, depth, log, time_channel)) float32``, level 1 first (see the module docstring).

    Raises:
        ValueError: ``trajectory`` not 3-D, fewer than 2 points (basepoint included), ``depth < 1``, or a
            basepoint of the wrong shape.
    """
    import signax

    depth = _check_depth(depth)
    path = jnp.asarray(trajectory)
    if path.ndim != 3:
        raise ValueError(f"trajectory must be (batch, points, channels); got shape {tuple(path.shape)}")
    path = path.astype(jnp.float32)
    batch, _, channels = path.shape
    if basepoint is not None:
        base = jnp.asarray(basepoint, jnp.float32)
        if base.shape not in ((channels,), (batch, channels)):
            raise ValueError(
                f"basepoint must be ({channels},) or ({batch}, {channels}); got shape {tuple(base.shape)}"
            )
        path = jnp.concatenate([jnp.broadcast_to(base, (batch, channels))[:, None], path], axis=1)
    points = path.shape[1]
    if points < 2:
        raise ValueError(f"a signature needs paths of at least 2 points; got {points}")
    if time_channel:
        time = jnp.linspace(0.0, 1.0, points, dtype=jnp.float32)
        path = jnp.concatenate([path, jnp.broadcast_to(time[None, :, None], (batch, points, 1))], axis=-1)
    fn = signax.logsignature if log else signax.signature
    return jnp.asarray(fn(path, depth), jnp.float32).reshape(batch, -1)
