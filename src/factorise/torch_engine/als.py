"""ALS half-steps on torch: every row's ridge problem at once, in batches of rows of similar counts.

The numba kernel (:func:`factorise.kernels.als.als_half_step`) builds each
row's normal equations ``G = X^T X + D``, ``X^T y`` from its ratings
(``X`` the fixed side's factors with a column of ones, ``y`` the residual
``r - mu - b``) and solves them by Cholesky. Here rows are sorted by their
number of ratings and cut into buckets of counts within a factor of two;
each bucket's ratings are laid out padded, ``(rows, L)``, so that its Gram
matrices are one batched product (``torch.bmm``) and its solves one
``torch.linalg.cholesky_ex`` and ``torch.cholesky_solve`` on an
``(rows, k + 1, k + 1)`` batch. No Python loop runs per row or per rating:
the loops are over buckets and over chunks of a bucket (which bound the
memory of the padded factors).

Arithmetic is float64, as the numba kernel's (the fixed factors are read as
float64, the systems accumulated and solved in float64), so the two agree
to rounding; the solved factors are stored as float32.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["TorchALS"]

#: Float64 numbers of padded factors a chunk may hold (256 MB): bounds each batch's memory.
CHUNK_NUMBERS = 1 << 25


class _Side:
    """One side's ratings (rows of a CSR), laid out in padded buckets on the device."""

    def __init__(self, indptr: np.ndarray, others: np.ndarray, values: np.ndarray, d: int, device: Any) -> None:
        import torch

        counts = np.diff(indptr)
        self.n_rows = counts.shape[0]
        self.empty = torch.from_numpy(np.flatnonzero(counts == 0)).to(device)
        self.chunks: list[tuple[Any, Any, Any, Any, Any]] = []
        rated = np.flatnonzero(counts > 0)
        if rated.size == 0:
            return
        order = rated[np.argsort(counts[rated], kind="stable")]
        width = np.int64(1) << np.ceil(np.log2(counts[order])).astype(np.int64)  # padded length: next power of 2
        cuts = np.flatnonzero(np.diff(width)) + 1
        for group in np.split(np.arange(order.shape[0]), cuts):
            L = int(width[group[0]])
            per_chunk = max(1, CHUNK_NUMBERS // (d * max(L, d)))  # bounds the padded factors and the (R, d, d) systems
            for start in range(0, group.shape[0], per_chunk):
                rows = order[group[start : start + per_chunk]]
                n = counts[rows]
                slots = np.arange(L)
                valid = slots[None, :] < n[:, None]
                pos = np.where(valid, indptr[rows][:, None] + slots[None, :], 0)
                self.chunks.append((
                    torch.from_numpy(rows).to(device),
                    torch.from_numpy(np.where(valid, others[pos], 0).astype(np.int64)).to(device),
                    torch.from_numpy(np.where(valid, values[pos], 0).astype(np.float64)).to(device),
                    torch.from_numpy(valid.astype(np.float64)).to(device),
                    torch.from_numpy(n.astype(np.float64)).to(device),
                ))  # fmt: skip


def device_bytes(n_ratings: int, n_users: int, n_items: int, rank: int) -> int:
    """An upper bound on the device memory of a torch ALS fit.

    Per rating, on each side, at most two padded slots (buckets round counts
    up to a power of two) of an int64 index, a float64 value and a float64
    mask: 96 bytes; per user and item, float64 factors, bias and their
    outputs; and one chunk's work (its padded factors, design matrix, Gram,
    Cholesky factors and solutions, about 8 x :data:`CHUNK_NUMBERS` numbers).
    """
    d = rank + 1
    return 96 * n_ratings + 4 * 8 * d * (n_users + n_items) + 8 * 8 * CHUNK_NUMBERS


class TorchALS:
    """:func:`~factorise.kernels.als.als_half_step` on a torch device (one object per fit).

    Parameters
    ----------
    device : torch.device
    """

    def __init__(self, device: Any) -> None:
        self.device = device
        self._sides: dict[int, _Side] = {}

    def half_step(
        self,
        indptr: np.ndarray,
        others: np.ndarray,
        values: np.ndarray,
        mu: float,
        fixed_factors: np.ndarray,
        fixed_bias: np.ndarray,
        factors: np.ndarray,
        bias: np.ndarray,
        regularization: float,
        bias_regularization: float,
        exponent: float,
        bounds: np.ndarray,
        row_loss: np.ndarray,
    ) -> float:
        """The numba kernel's call, computed on the device; writes ``factors``, ``bias``, ``row_loss``.

        ``bounds`` (the CPU threads' chunks) is not used. A row whose system is
        not positive definite gets NaN in ``row_loss`` and keeps its factors,
        as in the kernel.
        """
        import torch

        k = fixed_factors.shape[1]
        d = k + 1
        side = self._sides.get(id(indptr))
        if side is None:  # the CSR arrays live for the whole fit: laid out once per side
            side = self._sides[id(indptr)] = _Side(indptr, others, values, d, self.device)
        fixed = torch.from_numpy(np.ascontiguousarray(fixed_factors, dtype=np.float64)).to(self.device)
        fixed_b = torch.from_numpy(np.ascontiguousarray(fixed_bias, dtype=np.float64)).to(self.device)
        out_f = torch.from_numpy(np.ascontiguousarray(factors)).to(self.device, torch.float64)
        out_b = torch.from_numpy(np.ascontiguousarray(bias)).to(self.device, torch.float64)
        loss = torch.zeros(side.n_rows, dtype=torch.float64, device=self.device)
        eye_f = torch.zeros(d, dtype=torch.float64, device=self.device)
        eye_f[:k] = regularization
        eye_f[k] = bias_regularization
        for rows, idx, vals, valid, n in side.chunks:
            X = torch.cat([fixed[idx], torch.ones_like(vals)[..., None]], dim=2) * valid[..., None]  # (R, L, d)
            y = (vals - mu - fixed_b[idx]) * valid  # (R, L)
            G = torch.bmm(X.transpose(1, 2), X)  # (R, d, d)
            rhs = torch.bmm(X.transpose(1, 2), y[..., None])  # (R, d, 1)
            G.diagonal(dim1=1, dim2=2).add_((n ** exponent)[:, None] * eye_f[None, :])
            chol, info = torch.linalg.cholesky_ex(G)
            ok = info == 0
            w = torch.cholesky_solve(rhs, chol)[..., 0]  # rows that failed are overwritten below
            fit = (w * rhs[..., 0]).sum(1)
            row = (y * y).sum(1) - fit
            good = rows[ok]
            out_f[good] = w[ok, :k]
            out_b[good] = w[ok, k]
            loss[rows] = torch.where(ok, row, torch.full_like(row, float("nan")))
        if side.empty.numel():
            out_f[side.empty] = 0.0
            out_b[side.empty] = 0.0
        factors[...] = out_f.to(torch.float32).cpu().numpy()
        bias[...] = out_b.to(torch.float32).cpu().numpy()
        row_loss[...] = loss.cpu().numpy()
        return float(row_loss.sum())
