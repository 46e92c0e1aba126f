"""Rating data: the :class:`Ratings` container, raw-id maps, readers."""

from factorise.data._ratings import DuplicateRatingsWarning, IdMap, Ratings, concatenate

__all__ = ["DuplicateRatingsWarning", "IdMap", "Ratings", "concatenate"]
