"""Where Kubernetes things live on a node: kubeadm's own files, and cast's directory for the
files it writes (root-only, 0700)."""

from __future__ import annotations

CAST_DIR = "/etc/kubernetes/cast"
INIT_CONFIG = f"{CAST_DIR}/kubeadm-init.yaml"
REFRESH_CONFIG = f"{CAST_DIR}/kubeadm-refresh.yaml"
JOIN_CONFIG = f"{CAST_DIR}/kubeadm-join.yaml"
# Written only once kubeadm init / join has succeeded: a re-run skips a node that has one and
# starts a half-done one afresh.
INIT_DONE = f"{CAST_DIR}/init.done"
JOIN_DONE = f"{CAST_DIR}/join.done"
FLANNEL_DIR = f"{CAST_DIR}/flannel"
INGRESS_NGINX_DIR = f"{CAST_DIR}/ingress-nginx"
CERT_MANAGER_DIR = f"{CAST_DIR}/cert-manager"

# kubeadm's: the cluster's CA certificate (its public key is the join pin) and the admin
# kubeconfig (cluster-admin credentials; the first master's is fetched for the user).
CA_CERT = "/etc/kubernetes/pki/ca.crt"
ADMIN_KUBECONFIG = "/etc/kubernetes/admin.conf"
# The kubelet's credentials, written by a successful init or join.
KUBELET_KUBECONFIG = "/etc/kubernetes/kubelet.conf"
