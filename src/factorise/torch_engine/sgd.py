"""BiasedMF's SGD on torch: the per-rating update in waves of ratings that share no user and no item.

SGD's update of one rating touches one user's and one item's parameters, so
ratings that share neither can be updated at once, in any order, with the
result of updating them one by one. Each epoch the visiting order (drawn by
the model, as for the CPU engine) is cut into such *waves* greedily: a rating
goes into the first wave after those of its user's and its item's earlier
ratings (:func:`waves`, compiled, on the host). Each wave is then one
batched update on the device: gather the rows, compute the errors, write the
rows back. The epoch is therefore exactly the serial sweep over the ratings
in wave order (the tests check it against the numba serial kernel), and that
order keeps every user's and every item's ratings in the drawn order; it is
not the CPU engine's block-sweep order, so the two engines agree in quality,
not in their factors.

The number of waves is about the largest number of ratings of one user or
item: a few thousand batched steps an epoch on MovieLens- or Netflix-like
data, each of tens of thousands of ratings.
"""

from __future__ import annotations

from typing import Any

import numba
import numpy as np

__all__ = ["TorchSGD", "device_bytes", "waves"]


@numba.njit(cache=True, nogil=True)
def _wave_of(users: np.ndarray, items: np.ndarray, order: np.ndarray, n_users: int, n_items: int) -> np.ndarray:
    """The wave of each rating in ``order``: one past the latest wave of its user's and its item's (compiled)."""
    next_u = np.zeros(n_users, dtype=np.int64)
    next_i = np.zeros(n_items, dtype=np.int64)
    wave = np.empty(order.shape[0], dtype=np.int64)
    for t in range(order.shape[0]):
        j = order[t]
        u, i = users[j], items[j]
        w = max(next_u[u], next_i[i])
        wave[t] = w
        next_u[u] = w + 1
        next_i[i] = w + 1
    return wave


def waves(
    users: np.ndarray, items: np.ndarray, order: np.ndarray, n_users: int, n_items: int
) -> tuple[np.ndarray, np.ndarray]:
    """``order`` regrouped into waves: (positions wave by wave, wave pointer of length n_waves + 1).

    Within a wave no user and no item occurs twice; a user's (an item's)
    ratings are in later waves the later they come in ``order``; within a
    wave the ratings keep their order in ``order``.
    """
    wave = _wave_of(users, items, np.ascontiguousarray(order), int(n_users), int(n_items))
    n_waves = int(wave.max()) + 1 if wave.shape[0] else 0
    grouped = np.argsort(wave, kind="stable")
    ptr = np.zeros(n_waves + 1, dtype=np.int64)
    np.cumsum(np.bincount(wave, minlength=n_waves), out=ptr[1:])
    return np.asarray(order)[grouped], ptr


def device_bytes(n_ratings: int, n_users: int, n_items: int, rank: int, itemsize: int) -> int:
    """An upper bound on the device memory of a torch SGD fit.

    Per rating: its user and item (int64) and value, and the epoch's order
    and its sorted copies (about 40 bytes); per user and item: the factors
    and bias in the dtype, and a wave's gathered rows and updates (at most
    one per user and item, four copies).
    """
    return 40 * n_ratings + (n_users + n_items) * (rank + 1) * itemsize * 6


class TorchSGD:
    """One fit's ratings on a torch device, and its epochs (:meth:`epoch`).

    Parameters
    ----------
    device : torch.device
    users, items : numpy.ndarray of int32
    values : numpy.ndarray, of the factors' dtype
    """

    def __init__(self, device: Any, users: np.ndarray, items: np.ndarray, values: np.ndarray) -> None:
        import torch

        self.device = device
        self._users_host, self._items_host = users, items
        self.n_users = int(users.max()) + 1 if users.shape[0] else 0
        self.n_items = int(items.max()) + 1 if items.shape[0] else 0
        self.users = torch.from_numpy(users.astype(np.int64)).to(device)
        self.items = torch.from_numpy(items.astype(np.int64)).to(device)
        self.values = torch.from_numpy(np.ascontiguousarray(values)).to(device)

    def epoch(
        self,
        order: np.ndarray,
        mu: Any,
        bu: np.ndarray,
        bi: np.ndarray,
        P: np.ndarray,
        Q: np.ndarray,
        lr: Any,
        reg: Any,
        lr_bias: Any,
        reg_bias: Any,
    ) -> float:
        """One epoch over the ratings in ``order`` (as waves); updates ``bu``, ``bi``, ``P``, ``Q`` in place.

        Returns the sum of the squared pre-update errors, as the CPU kernels do.
        """
        import torch

        n_users, n_items = bu.shape[0], bi.shape[0]
        grouped, ptr = waves(self._users_host, self._items_host, order, n_users, n_items)
        dev = self.device
        idx = torch.from_numpy(grouped.astype(np.int64)).to(dev)
        u_all, i_all, r_all = self.users[idx], self.items[idx], self.values[idx]
        tbu, tbi = torch.from_numpy(bu).to(dev), torch.from_numpy(bi).to(dev)
        tP, tQ = torch.from_numpy(P).to(dev), torch.from_numpy(Q).to(dev)
        mu, lr, reg, lr_b, reg_b = (float(x) for x in (mu, lr, reg, lr_bias, reg_bias))
        sse = torch.zeros((), dtype=torch.float64, device=dev)
        bounds = ptr.tolist()
        with torch.no_grad():
            for w in range(len(bounds) - 1):
                a, b = bounds[w], bounds[w + 1]
                u, i, r = u_all[a:b], i_all[a:b], r_all[a:b]
                p, q = tP[u], tQ[i]
                b_u, b_i = tbu[u], tbi[i]
                e = r - (((mu + b_u) + b_i) + (p * q).sum(1))  # the CPU kernel's order of additions
                sse += (e.double() * e.double()).sum()
                tbu[u] = b_u + lr_b * (e - reg_b * b_u)
                tbi[i] = b_i + lr_b * (e - reg_b * b_i)
                e = e[:, None]
                tP[u] = p + lr * (e * q - reg * p)
                tQ[i] = q + lr * (e * p - reg * q)
        if dev.type != "cpu":  # on the CPU the tensors share the arrays' memory: already written
            bu[...] = tbu.cpu().numpy()
            bi[...] = tbi.cpu().numpy()
            P[...] = tP.cpu().numpy()
            Q[...] = tQ.cpu().numpy()
        return float(sse)
