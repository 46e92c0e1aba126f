"""Compiled kernels: small functions on arrays, one sweep each.

Every kernel here is a plain function of typed arrays and scalars that does
one pass of work and returns one number (the progress measure). Epoch loops,
convergence checks, callbacks and logging stay in Python. Each kernel has a
slow, obvious twin in :mod:`factorise.kernels.reference` that the tests
compare it with.
"""

from factorise.kernels.dense_sgd import sgd_dense_epoch, sgd_masked_epoch

__all__ = ["sgd_dense_epoch", "sgd_masked_epoch"]
