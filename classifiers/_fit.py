"""Weighted logistic regression on soft labels, pulled toward given weights (a prior) instead of zero.

scikit-learn's LogisticRegression takes neither soft labels nor a prior to shrink toward; this is
the same convex objective written for scipy's L-BFGS. With w0 = 0 it is ordinary L2 logistic
regression; with w0 = a prior's weights, few labels move the model little and many move it far.
(Shrinking toward w0 and fitting a delta on top of the prior as an offset are the same model for
a linear scorer over the same features: w = w0 + delta, penalty |delta|^2.)
"""

from __future__ import annotations

from typing import Any


def sigmoid(z: Any) -> Any:
    import numpy as np

    return 0.5 * (1.0 + np.tanh(0.5 * z))  # no overflow warnings for large |z|


def fit_logistic(x: Any, y: Any, weight: Any, c: float, w0: Any | None = None, b0: float = 0.0, max_iter: int = 400) -> tuple[Any, float]:
    """(weights, bias) minimising sum_i weight_i * crossentropy(y_i, sigmoid(x_i.w + b)) + |w - w0|^2 / (2c).

    `y` in [0, 1] (soft labels); `weight` is rescaled to sum to the number of rows, so `c` means what
    scikit-learn's C means.
    """
    import numpy as np
    from scipy.optimize import minimize

    n, d = x.shape
    s = np.asarray(weight, dtype=float)
    s = s * (n / s.sum())
    y = np.asarray(y, dtype=float)
    anchor = np.zeros(d) if w0 is None else np.asarray(w0, dtype=float)
    xt = x.T.tocsr() if hasattr(x, "tocsr") else x.T

    def loss(theta: Any) -> tuple[float, Any]:
        w, b = theta[:-1], theta[-1]
        z = x @ w + b
        # log(1 + e^z) - y z, written to stay finite for any z
        ll = np.logaddexp(0.0, z) - y * z
        r = s * (sigmoid(z) - y)
        diff = w - anchor
        value = float(s @ ll + diff @ diff / (2 * c))
        grad = np.concatenate([xt @ r + diff / c, [r.sum()]])
        return value, grad

    start = np.concatenate([anchor, [b0]])
    res = minimize(loss, start, jac=True, method="L-BFGS-B", options={"maxiter": max_iter})
    return res.x[:-1], float(res.x[-1])


def soft_log_loss(y: Any, p: Any, weight: Any) -> float:
    """Weighted cross-entropy of probabilities `p` against soft labels `y`."""
    import numpy as np

    p = np.clip(p, 1e-9, 1 - 1e-9)
    w = np.asarray(weight, dtype=float)
    return float(np.sum(w * -(y * np.log(p) + (1 - y) * np.log(1 - p))) / w.sum())
