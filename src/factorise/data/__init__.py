"""Rating data: the :class:`Ratings` container, raw-id maps, readers."""

from factorise.data._estimate import estimate_n_ratings
from factorise.data._ratings import DuplicateRatingsWarning, IdMap, Ratings, concatenate
from factorise.data._reader import as_ratings, read_pairs, read_ratings

__all__ = [
    "DuplicateRatingsWarning",
    "IdMap",
    "Ratings",
    "as_ratings",
    "concatenate",
    "estimate_n_ratings",
    "read_pairs",
    "read_ratings",
]
