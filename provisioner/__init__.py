"""cast: one Kubernetes cluster across several clouds, joined by a WireGuard full mesh."""

__version__ = "0.1.0"
