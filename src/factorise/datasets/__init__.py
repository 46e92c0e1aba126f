"""Data sets that ship with factorise (small, embedded) or that it can fetch."""

from factorise.datasets._lab import lab_mask, lab_matrix

__all__ = ["lab_matrix", "lab_mask"]
