# demo-gcp-m1 (master): kubeadm join to cluster demo
# cast runs each step as root over SSH, in this order, stopping at the first failure;
# the cleanup runs whatever happened.

# 1. prepare
install -d -m 0700 /etc/kubernetes/cast

# 2. files written (their content: the files of the same path beside this one)
#    0600 /etc/kubernetes/cast/kubeadm-join.yaml  (secret)

# 3. commands
for f in /etc/hosts /etc/cloud/templates/hosts.debian.tmpl; do [ -f "$f" ] || continue; { grep -v ' # cast: kubernetes api$' "$f"; echo '10.4.0.1 api.demo.cast.internal # cast: kubernetes api'; } > "$f.cast" && cat "$f.cast" > "$f" && rm -f "$f.cast"; done
test -f /etc/kubernetes/cast/join.done || { test -f /etc/kubernetes/kubelet.conf && curl -fsS --max-time 5 http://127.0.0.1:10248/healthz >/dev/null 2>&1 && { touch /etc/kubernetes/cast/join.done || true; }; } || { kubeadm reset --force >/dev/null 2>&1; kubeadm join --config /etc/kubernetes/cast/kubeadm-join.yaml && touch /etc/kubernetes/cast/join.done; }

# 4. cleanup
rm -f /etc/kubernetes/cast/kubeadm-join.yaml
