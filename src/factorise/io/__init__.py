"""Reading and writing matrices."""

from factorise.io._dense import DenseMatrix, atomic_write, read_dense_matrix, write_dense_csv

__all__ = ["DenseMatrix", "atomic_write", "read_dense_matrix", "write_dense_csv"]
