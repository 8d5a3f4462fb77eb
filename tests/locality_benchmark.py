"""LRU model vs exact simulation under the correlated routing process, over a wide grid.

Run: ``python tests/locality_benchmark.py [--steps N]``. Prints one row per grid point and the
maximum absolute error of :func:`elmoe_dse.locality.lru_resident_frac` against
:func:`elmoe_dse.locality.simulate_correlated_lru` (resident share), by (B, rho) and overall.
"""

from __future__ import annotations

import argparse
import itertools

import numpy as np

from elmoe_dse import locality, routing

GRID_A = (0.0, 0.5, 1.0, 1.5)
GRID_RHO = (0.0, 0.25, 0.5, 0.8)
GRID_B = (1, 4, 16)
GRID_EK = ((64, 4), (64, 8), (128, 6), (128, 8))
CAPACITY_FRACS = (1 / 8, 1 / 4, 1 / 2)


def run(steps: int, layers: int, seed: int) -> float:
    worst = 0.0
    by_cell: dict[tuple[int, float], float] = {}
    for (e, k), a, rho, b, frac in itertools.product(
        GRID_EK, GRID_A, GRID_RHO, GRID_B, CAPACITY_FRACS
    ):
        p = routing.expert_probabilities(e, k, "zipf", a)
        c = int(e * frac)
        rng = np.random.default_rng(seed)
        sim = locality.simulate_correlated_lru(
            p, rho, b, c, steps, rng, warmup_steps=steps // 5, layers=layers
        )
        _, model = locality.lru_resident_frac(p, rho, b, c)
        err = abs(float(model) - sim)
        worst = max(worst, err)
        by_cell[(b, rho)] = max(by_cell.get((b, rho), 0.0), err)
        print(
            f"E={e:3d} k={k} a={a:.1f} rho={rho:.2f} B={b:2d} C={c:3d} sim={sim:.4f} "
            f"model={float(model):.4f} err={err:+.4f}"
        )
    print("max |model - sim| by (B, rho):")
    for (b, rho), err in sorted(by_cell.items()):
        print(f"  B={b:2d} rho={rho:.2f}: {err:.4f}")
    print(f"max |model - sim| over the grid: {worst:.4f}")
    return worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    run(args.steps, args.layers, args.seed)


if __name__ == "__main__":
    main()
