"""factorise: low-rank matrix factorisation and matrix completion.

The lab's algorithms (:func:`sgd_factorise`, :func:`sgd_factorise_masked`)
run compiled, and its full-batch :func:`gd_factorise_masked` vectorised
(NumPy/SciPy, or torch on a GPU); :func:`truncated_svd` and :func:`svd_optimum` give the
Eckart-Young optimum to compare them with. For rating data,
:func:`read_ratings` reads a ratings file into :class:`Ratings`, and the
models :class:`BiasedMF` (SGD), :class:`ALS`, :class:`SoftImpute` and
:class:`Baseline` fit, predict, recommend, save and load;
:mod:`factorise.evaluation` scores them and :mod:`factorise.datasets`
fetches MovieLens.
"""

__version__ = "0.1.0"

from factorise.data import DuplicateRatingsWarning, Ratings, as_ratings, read_pairs, read_ratings  # noqa: E402
from factorise.exceptions import BlasThreadsWarning, DivergenceError, ThreadsWarning  # noqa: E402
from factorise.lab import gd_factorise_masked, sgd_factorise, sgd_factorise_masked  # noqa: E402
from factorise.models import ALS, Baseline, BayesianMF, BiasedMF, RatingModel, SoftImpute, load_model  # noqa: E402
from factorise.svd import reconstruction_loss, singular_values, svd_optimum, truncated_svd  # noqa: E402

__all__ = [
    "ALS",
    "Baseline",
    "BayesianMF",
    "BiasedMF",
    "BlasThreadsWarning",
    "DivergenceError",
    "DuplicateRatingsWarning",
    "RatingModel",
    "Ratings",
    "SoftImpute",
    "ThreadsWarning",
    "__version__",
    "as_ratings",
    "gd_factorise_masked",
    "load_model",
    "read_pairs",
    "read_ratings",
    "reconstruction_loss",
    "sgd_factorise",
    "sgd_factorise_masked",
    "singular_values",
    "svd_optimum",
    "truncated_svd",
]
