"""Evaluating rating models: errors, ranking metrics, splits, cross-validation.

- Errors of predicted ratings: :func:`rmse`, :func:`mae`.
- Top-k ranking with a relevance threshold: :func:`precision_at_k`,
  :func:`recall_at_k`, :func:`ndcg_at_k`, or all three in one pass with
  :func:`ranking_metrics` (:func:`ranking_metrics_at` for several ``k``).
  Candidates are either every item the user did not rate in training
  (``candidates="unrated"``, the default and the realistic protocol) or only
  the user's test items (``"test"``, easier, as in many papers).
- Splits: :func:`train_test_split` (over ratings, or per user),
  :class:`KFold`, :class:`PredefinedFolds`, :func:`movielens_folds`
  (MovieLens 100K's u1-u5).
- :func:`cross_validate` clones a model per fold, fits, scores and times it,
  and returns a :class:`CVResult` (per-fold rows, means, ``to_dict()``).

The honest yardstick is :class:`factorise.models.baseline.Baseline`
(``mu + b_u + b_i``): a model that does not beat it has learnt nothing
beyond item popularity and user generosity.
"""

from factorise.evaluation._cross_validate import DEFAULT_METRICS, CVResult, cross_validate
from factorise.evaluation._metrics import mae, rmse
from factorise.evaluation._ranking import (
    RankingMetrics,
    ndcg_at_k,
    precision_at_k,
    ranking_metrics,
    ranking_metrics_at,
    recall_at_k,
)
from factorise.evaluation._split import KFold, PredefinedFolds, movielens_folds, train_test_split

__all__ = [
    "CVResult",
    "DEFAULT_METRICS",
    "KFold",
    "PredefinedFolds",
    "RankingMetrics",
    "cross_validate",
    "mae",
    "movielens_folds",
    "ndcg_at_k",
    "precision_at_k",
    "ranking_metrics",
    "ranking_metrics_at",
    "recall_at_k",
    "rmse",
    "train_test_split",
]
