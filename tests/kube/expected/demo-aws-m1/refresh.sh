# demo-aws-m1 (master): fresh join material before nodes join
# cast runs each step as root over SSH, in this order, stopping at the first failure;
# the cleanup runs whatever happened.

# 1. prepare
install -d -m 0700 /etc/kubernetes/cast

# 2. files written (their content: the files of the same path beside this one)
#    0600 /etc/kubernetes/cast/kubeadm-refresh.yaml  (secret)

# 3. commands
kubeadm token delete abcdef --kubeconfig /etc/kubernetes/admin.conf >/dev/null 2>&1 || true
kubeadm token create --config /etc/kubernetes/cast/kubeadm-refresh.yaml --kubeconfig /etc/kubernetes/admin.conf >/dev/null
kubeadm init phase upload-certs --upload-certs --config /etc/kubernetes/cast/kubeadm-refresh.yaml >/dev/null

# 4. cleanup
rm -f /etc/kubernetes/cast/kubeadm-refresh.yaml
