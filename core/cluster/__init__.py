"""The supervisor of a local cluster: broker processes, cluster.json, the ctl socket.

Public API for the console and tests: ClusterControl, read_cluster_json, LocalCluster.
"""

from core.cluster.client import (
    ClusterControl,
    ClusterControlError,
    NotRunningError,
    read_cluster_json,
)
from core.cluster.local import LocalCluster, LocalClusterError, free_base_port

__all__ = [
    "ClusterControl", "ClusterControlError", "LocalCluster", "LocalClusterError",
    "NotRunningError", "free_base_port", "read_cluster_json",
]
