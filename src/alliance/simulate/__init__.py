"""Simulated practices: clients, therapists, outcome courses, alliance, ruptures and dropout.

A seeded generator of realistic synthetic practices (SPEC C12) with the ground truth kept
beside the data, used by the demo, the tests and the benchmarks::

    >>> import alliance as al
    >>> cfg = al.SimulationConfig(n_therapists=2, n_clients=30, max_sessions=10, seed=7,
    ...                           pilot_clients=2000)
    >>> practice = al.simulate_practice(cfg)
    >>> practice.clients.shape[0], practice.therapists.shape[0]
    (30, 2)
    >>> practice.params["fixed_effects"]["log_session:intake"]
    -0.2

Modules: :mod:`~alliance.simulate.config` (the configuration and its sourced defaults),
:mod:`~alliance.simulate.model` (draws, latent courses, calibration),
:mod:`~alliance.simulate.items` (item answers that add up to the totals),
:mod:`~alliance.simulate.core` (assembly) and :mod:`~alliance.simulate.practice` (the result and
how it is written). The model and its sources: ``docs/algorithms/simulation.md``.
"""

from __future__ import annotations

from alliance.simulate.config import CONCERNS, TRAJECTORIES, SimulationConfig
from alliance.simulate.core import METHOD, STATUSES, clients_for_observations, simulate_practice
from alliance.simulate.practice import TABLES, SimulatedPractice, WrittenFiles, parquet_available

__all__ = [
    "CONCERNS",
    "METHOD",
    "STATUSES",
    "TABLES",
    "TRAJECTORIES",
    "SimulatedPractice",
    "SimulationConfig",
    "WrittenFiles",
    "clients_for_observations",
    "parquet_available",
    "simulate_practice",
]
