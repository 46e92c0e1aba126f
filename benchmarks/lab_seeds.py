"""How the lab's SGD behaves across seeds on the lab matrix (quality, not speed).

Run from the repository root::

    .venv/bin/python benchmarks/lab_seeds.py [--seeds 100]

For seeds 0..N-1 it prints, at 1000, 3000 and 10,000 epochs: how many seeds end with
a loss in [SVD optimum, 0.1226], the median and worst loss, and the median and worst
observed-cell error of the masked fit on the lab's mask.
"""

from __future__ import annotations

import argparse

import numpy as np

from factorise import reconstruction_loss, sgd_factorise, sgd_factorise_masked, svd_optimum
from factorise.datasets import lab_mask, lab_matrix


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=100)
    args = parser.parse_args()
    A, M = lab_matrix(), lab_mask()
    optimum = svd_optimum(A, 2)
    print(f"SVD optimum at rank 2: {optimum:.6f}")
    print("| epochs | seeds with loss in [optimum, 0.1226] | median loss | worst loss "
          "| below optimum | masked: median observed error | masked: worst |")
    print("|---|---|---|---|---|---|---|")
    for epochs in (1000, 3000, 10000):
        losses, observed = [], []
        for seed in range(args.seeds):
            losses.append(reconstruction_loss(A, *sgd_factorise(A, 2, epochs, random_state=seed)))
            U, V = sgd_factorise_masked(A, M, 2, epochs, random_state=seed)
            observed.append(reconstruction_loss(A, U, V, M))
        L, O = np.array(losses), np.array(observed)
        in_band = int(np.sum((L >= optimum) & (L <= 0.1226)))
        print(
            f"| {epochs} | {in_band} of {args.seeds} | {np.median(L):.5f} | {L.max():.5f} | "
            f"{int(np.sum(L < optimum))} | {np.median(O):.1e} | {O.max():.1e} |"
        )


if __name__ == "__main__":
    main()
