"""Rating models: biased matrix factorisation by SGD, ALS, SoftImpute.

All share :class:`RatingModel`'s interface: ``fit``, ``predict``,
``recommend``, ``save``/``load``, ``history_``.
"""

from factorise.models._base import FORMAT_VERSION, RatingModel, Recommendations, TrainData, load_model
from factorise.models.als import ALS
from factorise.models.baseline import Baseline
from factorise.models.bayes import BayesianMF
from factorise.models.sgd import BiasedMF
from factorise.models.softimpute import SoftImpute

__all__ = ["ALS", "BayesianMF", "BiasedMF", "Baseline", "SoftImpute", "FORMAT_VERSION", "RatingModel", "Recommendations", "TrainData", "load_model"]
