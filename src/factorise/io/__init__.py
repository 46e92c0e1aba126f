"""Reading and writing matrices; atomic writes."""

from factorise.io._atomic import atomic_write, remove_stale_temp_files
from factorise.io._dense import DenseMatrix, read_dense_matrix, write_dense_csv

__all__ = ["DenseMatrix", "atomic_write", "read_dense_matrix", "remove_stale_temp_files", "write_dense_csv"]
