"""The one way Foveate reaches Ray (local embedded head, an address, or a ray:// client)."""

from cluster.connect import ClusterResources, connect, resources

__all__ = ["ClusterResources", "connect", "resources"]
