"""Tests use the product's local cluster runner (``ttp.local_cluster``)."""

from ttp.local_cluster import START_ORDER, Cluster, free_port

__all__ = ["START_ORDER", "Cluster", "free_port"]
