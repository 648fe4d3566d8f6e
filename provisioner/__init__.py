"""cast: one Kubernetes cluster across several clouds, joined by a WireGuard full mesh."""

