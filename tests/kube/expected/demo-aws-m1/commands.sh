# demo-aws-m1 (master): kubeadm init, first master of cluster demo
# cast runs each step as root over SSH, in this order, stopping at the first failure;
# the cleanup runs whatever happened.

# 1. prepare
install -d -m 0700 /etc/kubernetes/cast /etc/kubernetes/cast/flannel /etc/kubernetes/cast/ingress-nginx /etc/kubernetes/cast/cert-manager

# 2. files written (their content: the files of the same path beside this one)
#    0600 /etc/kubernetes/cast/kubeadm-init.yaml  (secret)
#    0644 /etc/kubernetes/cast/flannel/kube-flannel.yml.sha256
#    0644 /etc/kubernetes/cast/flannel/kustomization.yaml
#    0644 /etc/kubernetes/cast/ingress-nginx/deploy.yaml.sha256
#    0644 /etc/kubernetes/cast/ingress-nginx/metrics-service.yaml
#    0644 /etc/kubernetes/cast/ingress-nginx/kustomization.yaml
#    0644 /etc/kubernetes/cast/cert-manager/cert-manager.yaml.sha256
#    0644 /etc/kubernetes/cast/cert-manager/kustomization.yaml
#    0644 /etc/kubernetes/cast/cert-manager/cluster-issuer.yaml

# 3. commands
for f in /etc/hosts /etc/cloud/templates/hosts.debian.tmpl; do [ -f "$f" ] || continue; { grep -v ' # cast: kubernetes api$' "$f"; echo '10.4.0.1 api.demo.cast.internal # cast: kubernetes api'; } > "$f.cast" && cat "$f.cast" > "$f" && rm -f "$f.cast"; done
test -f /etc/kubernetes/cast/init.done || { test -f /etc/kubernetes/admin.conf && kubectl --kubeconfig /etc/kubernetes/admin.conf get --raw /readyz --request-timeout=10s >/dev/null 2>&1 && { touch /etc/kubernetes/cast/init.done || true; }; } || { kubeadm reset --force >/dev/null 2>&1; kubeadm init --config /etc/kubernetes/cast/kubeadm-init.yaml --upload-certs >/dev/null && touch /etc/kubernetes/cast/init.done; }
curl -fsSL --retry 5 -o /etc/kubernetes/cast/flannel/kube-flannel.yml https://raw.githubusercontent.com/flannel-io/flannel/v0.28.9/Documentation/kube-flannel.yml
sha256sum --check --strict --quiet /etc/kubernetes/cast/flannel/kube-flannel.yml.sha256
kubectl --kubeconfig /etc/kubernetes/admin.conf apply -k /etc/kubernetes/cast/flannel
curl -fsSL --retry 5 -o /etc/kubernetes/cast/ingress-nginx/deploy.yaml https://raw.githubusercontent.com/kubernetes/ingress-nginx/controller-v1.15.1/deploy/static/provider/baremetal/deploy.yaml
sha256sum --check --strict --quiet /etc/kubernetes/cast/ingress-nginx/deploy.yaml.sha256
kubectl --kubeconfig /etc/kubernetes/admin.conf apply -k /etc/kubernetes/cast/ingress-nginx
curl -fsSL --retry 5 -o /etc/kubernetes/cast/cert-manager/cert-manager.yaml https://github.com/cert-manager/cert-manager/releases/download/v1.21.1/cert-manager.yaml
sha256sum --check --strict --quiet /etc/kubernetes/cast/cert-manager/cert-manager.yaml.sha256
kubectl --kubeconfig /etc/kubernetes/admin.conf apply -k /etc/kubernetes/cast/cert-manager
kubectl --kubeconfig /etc/kubernetes/admin.conf -n cert-manager wait --for=condition=Available --timeout=300s deployment/cert-manager deployment/cert-manager-cainjector deployment/cert-manager-webhook
timeout 300 sh -c 'until kubectl --kubeconfig /etc/kubernetes/admin.conf apply -f /etc/kubernetes/cast/cert-manager/cluster-issuer.yaml; do sleep 5; done'

# 4. cleanup
rm -f /etc/kubernetes/cast/kubeadm-init.yaml
