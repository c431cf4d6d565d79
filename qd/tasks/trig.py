"""A fast float32 ``sin`` / ``cos`` pair for the tasks' forward kinematics.

On CPU, XLA evaluates ``jnp.sin`` / ``jnp.cos`` by calling the scalar libm once per element; for the
100-joint arm that is most of an evaluation (about 3 ms of sin + cos per 1024 x 100 angles on a 2-core CPU,
against 0.8 ms for :func:`sincos`, which XLA vectorises: it is only multiplies, adds and selects).
"""

from __future__ import annotations

from typing import Tuple

import jax
import jax.numpy as jnp
import numpy as np

# Cody-Waite split of pi / 2: the first part has 8 significant bits, so ``k * PIO2_1`` is exact for |k| < 2^16.
_PIO2_1, _PIO2_2, _PIO2_3 = 1.5703125, 4.837512969970703125e-4, 7.54978995489188216e-8
MAX_ABS_ANGLE = 1.0e4


def sincos(angles: jax.Array) -> Tuple[jax.Array, jax.Array]:
    """``(sin(angles), cos(angles))`` elementwise, float32, for ``|angles| < 1e4`` rad.

    Range reduction to ``[-pi/4, pi/4]`` by multiples of ``pi/2`` (three-part Cody-Waite), then the minimax
    polynomials of Cephes' ``sinf`` / ``cosf`` (S. Moshier, Cephes Math Library). Absolute error below
    ``1e-7`` for ``|angles| <= 300`` (``jnp.sin``: ``3e-8``); beyond ``1e4`` rad the reduction loses
    accuracy (not checked: the callers' angles are bounded by construction).

    Args:
        angles: any shape, converted to float32 (radians).

    Returns:
        ``(sin, cos)``, float32, the shape of ``angles``.
    """
    a = jnp.asarray(angles, jnp.float32)
    k = jnp.round(a * np.float32(2.0 / np.pi))
    r = ((a - k * _PIO2_1) - k * _PIO2_2) - k * _PIO2_3
    z = r * r
    s = r + r * z * (-1.6666654611e-1 + z * (8.3321608736e-3 + z * -1.9515295891e-4))
    c = 1.0 - 0.5 * z + z * z * (4.166664568298827e-2 + z * (-1.388731625493765e-3 + z * 2.443315711809948e-5))
    n = k.astype(jnp.int32)
    odd = (n & 1) == 1
    sin, cos = jnp.where(odd, c, s), jnp.where(odd, s, c)
    return jnp.where((n & 2) == 2, -sin, sin), jnp.where(((n + 1) & 2) == 2, -cos, cos)
