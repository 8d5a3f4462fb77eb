"""Bounded Levenberg-Marquardt least squares: the one optimizer of the GPU fits.

``calibrate-hw`` fits kernel constants to a kernel database with it
(:func:`elmoe_dse.explore.calibrate_hw.huber_lm`) and the serving-engine factors to measured
end-to-end points (:func:`elmoe_dse.explore.validate.fit_engine_terms`).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

Array = np.ndarray


def levenberg_marquardt(
    objective: Callable[[Array], Array], theta: Array, lo: Array, hi: Array, iterations: int = 60
) -> Array:
    """Minimize ``|objective(theta)|^2`` by Levenberg-Marquardt (forward-difference Jacobian),
    each step clipped to the box [lo, hi]; the kernel fits and the engine-factor fit share it."""
    theta, lam = np.clip(np.asarray(theta, dtype=float), lo, hi), 1e-2
    res = objective(theta)
    for _ in range(iterations):
        jac = np.empty((res.size, theta.size))
        for j in range(theta.size):
            step = np.zeros_like(theta)
            step[j] = 1e-5
            jac[:, j] = (objective(theta + step) - res) / 1e-5
        g, h = jac.T @ res, jac.T @ jac
        new = np.clip(theta - np.linalg.solve(h + lam * np.diag(np.diag(h) + 1e-12), g), lo, hi)
        new_res = objective(new)
        if new_res @ new_res < res @ res:
            converged = np.max(np.abs(new - theta)) < 1e-7
            theta, res, lam = new, new_res, lam / 3.0
            if converged:
                break
        else:
            lam *= 4.0
    return theta
