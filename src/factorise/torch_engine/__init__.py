"""The torch engine of the rating models (``device="torch-cpu"``, ``"cuda"``, ``"cuda:N"``).

Each module implements one model's inner step on torch tensors, behind the
same call as the numba kernel it stands in for; the models (parameters,
validation, the epoch loop, the fitted state) are written once, in
:mod:`factorise.models`. torch is imported only when a fit asks for a torch
device (:mod:`factorise._torch`).
"""
