"""Data sets that ship with factorise (small, embedded), that it can fetch, or that it plants."""

from factorise.datasets._lab import lab_mask, lab_matrix
from factorise.datasets.movielens import (
    MOVIELENS_SHA256,
    MOVIELENS_URLS,
    MovieLens,
    default_cache_dir,
    load_movielens,
)
from factorise.datasets.synthetic import SyntheticRatings, held_out_path, synthetic_ratings, write_ratings

__all__ = [
    "lab_matrix",
    "lab_mask",
    "load_movielens",
    "MovieLens",
    "default_cache_dir",
    "MOVIELENS_SHA256",
    "MOVIELENS_URLS",
    "SyntheticRatings",
    "held_out_path",
    "synthetic_ratings",
    "write_ratings",
]
