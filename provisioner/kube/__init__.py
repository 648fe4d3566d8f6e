"""Kubernetes on the nodes: the pinned versions, kubeadm's configuration, kubeconfig files."""
