"""The sample cluster the expected files show: `demo`, 2 masters and 2 workers on AWS and GCP,
with ingress (its ACME contact ops@example.com) and fixed join material (a real run makes fresh
ones)."""

from __future__ import annotations

from provisioner.kube.bootstrap import BootstrapPlan, IngressSettings, KubeNode, NodeBootstrap, bootstrap_plan

CLUSTER = "demo"
NODES = (
    KubeNode("demo-aws-m1", "master", "10.4.0.1", "198.18.0.10"),
    KubeNode("demo-gcp-m1", "master", "10.4.0.2", "198.51.100.10"),
    KubeNode("demo-aws-w1", "worker", "10.4.0.3", "198.18.0.11"),
    KubeNode("demo-gcp-w1", "worker", "10.4.0.4", "198.51.100.11"),
)
TOKEN = "abcdef.0123456789abcdef"
CERTIFICATE_KEY = "0123456789abcdef" * 4
CA_HASH = "sha256:" + "5e" * 32
KUBERNETES_VERSION = "v1.36.2"
INGRESS = IngressSettings(email="ops@example.com")


def sample_plan() -> BootstrapPlan:
    # Given in an order other than by name, as the engine may list them.
    given = (NODES[3], NODES[1], NODES[2], NODES[0])
    return bootstrap_plan(CLUSTER, given, token=TOKEN, certificate_key=CERTIFICATE_KEY,
                          ca_cert_hash=CA_HASH, kubernetes_version=KUBERNETES_VERSION, ingress=INGRESS)


def listing(bootstrap: NodeBootstrap, what: str) -> str:
    """One node's bootstrap as a shell script a person reads: the steps in the order cast runs
    them, the files named by mode and path (their content is in the files beside it)."""
    lines = [
        f"# {bootstrap.node} ({bootstrap.role}): {what}",
        "# cast runs each step as root over SSH, in this order, stopping at the first failure;",
        "# the cleanup runs whatever happened.",
        "",
        "# 1. prepare",
        *bootstrap.prepare,
        "",
        "# 2. files written (their content: the files of the same path beside this one)",
        *(f"#    {f.mode:04o} {f.path}{'  (secret)' if f.secret else ''}" for f in bootstrap.files),
        "",
        "# 3. commands",
        *bootstrap.commands,
        "",
        "# 4. cleanup",
        *bootstrap.cleanup,
    ]
    return "\n".join(lines) + "\n"


def expected_tree(plan: BootstrapPlan) -> dict[str, str]:
    """Every expected file, by path relative to tests/kube/expected."""
    tree: dict[str, str] = {}
    steps = [
        (plan.init, "commands.sh", f"kubeadm init, first master of cluster {plan.cluster}"),
        (plan.refresh, "refresh.sh", "fresh join material before nodes join"),
        *((join, "commands.sh", f"kubeadm join to cluster {plan.cluster}") for join in plan.joins),
    ]
    for bootstrap, script, what in steps:
        entries = {f"{bootstrap.node}/{script}": listing(bootstrap, what)}
        entries.update({f"{bootstrap.node}{f.path}": f.content for f in bootstrap.files})
        clash = set(entries) & set(tree)
        assert not clash, f"two steps write {clash}"
        tree.update(entries)
    return tree
