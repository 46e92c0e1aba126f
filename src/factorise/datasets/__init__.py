"""Data sets that ship with factorise (small, embedded) or that it can fetch."""

from factorise.datasets._lab import lab_mask, lab_matrix
from factorise.datasets.movielens import (
    MOVIELENS_SHA256,
    MOVIELENS_URLS,
    MovieLens,
    default_cache_dir,
    load_movielens,
)

__all__ = [
    "lab_matrix",
    "lab_mask",
    "load_movielens",
    "MovieLens",
    "default_cache_dir",
    "MOVIELENS_SHA256",
    "MOVIELENS_URLS",
]
