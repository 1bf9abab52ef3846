"""Lookout on a Ray cluster: the same ``pipeline.toml``, cameras on many machines.

``python -m pipeline run --ray [ADDRESS]`` (or ``[cluster] enabled = true``)
runs the config on a Ray cluster (``pip install 'lookout[distributed]'``):

- :mod:`~pipeline.app.cluster.placement`: cameras in groups, groups on nodes (pure);
- :mod:`~pipeline.app.cluster.host`: the camera actor (a single-process pipeline
  on its group's config; decode, detections and watches stay together);
- :mod:`~pipeline.app.cluster.relay` and :mod:`~pipeline.app.cluster.hub`: every
  event goes to one hub actor on the head: sinks, activity store, ledger;
  :mod:`~pipeline.app.cluster.hub_host`: the hub's process hosts the head's first
  camera group too;
- :mod:`~pipeline.app.cluster.ledger`: what outlives a camera actor (resume points,
  alert ids); :mod:`~pipeline.app.cluster.ledger_keep`: and what outlives the hub's
  process (the ledger kept in Ray's control store);
- :mod:`~pipeline.app.cluster.slots`, :mod:`~pipeline.app.cluster.lease_book` and
  :mod:`~pipeline.app.cluster.leases`: a backend's ``max_concurrency`` across the
  cluster, leased to the camera actors in shares (no remote call per look);
- :mod:`~pipeline.app.cluster.runtime`, :mod:`~pipeline.app.cluster.reload`,
  :mod:`~pipeline.app.cluster.metrics`, :mod:`~pipeline.app.cluster.app`: the
  driver (placement, moving lost groups, control, reload, metrics, shutdown);
- :mod:`~pipeline.app.cluster.refusals`: what runs only in a single process.

Only this package imports Ray, and only its Ray modules do: importing
``pipeline.app.cluster`` itself does not, so ``python -m pipeline`` never loads it.

Example:
    >>> run_on_cluster(config, path, "auto")  # doctest: +SKIP
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from pipeline.app.cluster.refusals import SINGLE_PROCESS_ONLY, cluster_problems
from pipeline.core.config import LookoutConfig

__all__ = ["SINGLE_PROCESS_ONLY", "RayMissingError", "cluster_problems", "run_on_cluster"]


class RayMissingError(RuntimeError):
    """Cluster mode was asked for but Ray is not installed."""


def run_on_cluster(config: LookoutConfig, config_path: Path | None, address: str) -> int:
    """Run ``config`` on the Ray cluster at ``address`` until a stop signal; returns the exit code.

    Raises:
        RayMissingError: Ray is not installed (``pip install 'lookout[distributed]'``).
        ConfigError: the config needs a single process (:func:`cluster_problems`).
    """
    if importlib.util.find_spec("ray") is None:
        raise RayMissingError(
            "running on a cluster needs Ray: pip install 'lookout[distributed]' "
            "(or pip install ray)"
        )
    # Imported here, not at the top: Ray is an optional extra that the single-process
    # path must never load (and this package is imported by the CLI).
    from pipeline.app.cluster.app import run_cluster_until_signalled

    return run_cluster_until_signalled(config, config_path, address)
