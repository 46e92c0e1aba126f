"""factorise: low-rank matrix factorisation and matrix completion.

The lab's algorithms (:func:`sgd_factorise`, :func:`sgd_factorise_masked`)
run compiled; :func:`truncated_svd` and :func:`svd_optimum` give the
Eckart-Young optimum to compare them with.
"""

from factorise.exceptions import DivergenceError
from factorise.lab import sgd_factorise, sgd_factorise_masked
from factorise.svd import reconstruction_loss, singular_values, svd_optimum, truncated_svd

__version__ = "0.1.0"

__all__ = [
    "DivergenceError",
    "reconstruction_loss",
    "sgd_factorise",
    "sgd_factorise_masked",
    "singular_values",
    "svd_optimum",
    "truncated_svd",
    "__version__",
]
