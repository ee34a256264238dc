"""Grids and Optuna studies over encoders, heads and hyperparameters, shared by many workers.

``grid`` expands a grid into RunConfigs; ``grid_worker`` runs a grid's points through its
Optuna study (``coordination`` decides who runs what); ``spaces`` and ``study`` are
``bench tune``; ``storage`` opens Optuna storages; ``workers`` starts one process per GPU.
"""
