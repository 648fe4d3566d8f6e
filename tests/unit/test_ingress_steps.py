"""The cloud-blind ingress steps over an in-memory load balancing (the providers' own behaviour
is tested against the emulators in tests/<cloud>/): backends are the cloud's planned workers,
a worker being removed is left out, a cloud left without workers loses its load balancer, and
with no DNS provider the records to create are printed."""

from __future__ import annotations

from collections.abc import Sequence

from provisioner.clouds.balancing import BalancerEnsured, BalancerPlan, LoadBalancing
from provisioner.clouds.base import CloudTarget, ClusterRef, Vm
from provisioner.ingress import IngressSteps
from provisioner.plan import make_plan
from provisioner.regions import load_region_map
from provisioner.spec import build_spec

REGIONS = load_region_map()
REF = ClusterRef("demo", "00000000-0000-4000-8000-000000000001")


class Memory(LoadBalancing):
    """A load balancer kept in a dict, at a fixed address."""

    def __init__(self, address: str):
        self.address = address
        self.backends: tuple[str, ...] | None = None

    def ensure_load_balancer(self, target: CloudTarget, plan: BalancerPlan, workers: Sequence[Vm], *,
                             dry_run: bool = False) -> BalancerEnsured:
        names = tuple(vm.name for vm in workers)
        actions = () if self.backends == names else (f"backends {', '.join(names)}",)
        if not dry_run:
            self.backends = names
        return BalancerEnsured(actions=actions, address=self.address, backends=names)

    def find_load_balancer(self, cluster: ClusterRef) -> BalancerEnsured | None:
        if self.backends is None:
            return None
        return BalancerEnsured(address=self.address, backends=self.backends)

    def delete_load_balancer(self, target: CloudTarget) -> None:
        self.backends = None


class Vms:
    def __init__(self, names: Sequence[str]):
        self.names = names

    def list_vms(self, cluster: ClusterRef) -> list[Vm]:
        return [Vm(n, f"i-{n}", "running", "10.0.0.1", "198.18.0.9") for n in self.names]


def steps(plan, memories):
    targets = {cp.cloud: CloudTarget(REF, cp.region, cp.zone, cp.network_cidr, cp.subnet_cidr, {}, {})
               for cp in plan.clouds}
    providers = {cp.cloud: Vms([n.name for n in cp.nodes]) for cp in plan.clouds}
    s = IngressSteps(REF, plan, targets, providers, open_lb=lambda cloud, region, zone: memories[cloud])  # type: ignore[arg-type]
    s.clouds = lambda: [c for c in targets if c in memories]  # type: ignore[method-assign]
    return s


def test_backends_are_the_planned_workers_and_records_are_printed_without_a_provider():
    spec = build_spec(REGIONS, name="demo", region="us-east", cloud_flags=["aws:1:2", "gcp:0:1"],
                      ingress_domain="apps.example.com")
    memories = {"aws": Memory("198.18.0.20"), "gcp": Memory("198.18.1.20")}
    lines = steps(make_plan(spec, REGIONS), memories).ensure()
    assert memories["aws"].backends == ("demo-aws-w1", "demo-aws-w2")  # never the master
    assert memories["gcp"].backends == ("demo-gcp-w1",)
    assert "aws: backends demo-aws-w1, demo-aws-w2" in lines
    dns = []
    s = steps(make_plan(spec, REGIONS), memories)
    s.step = lambda cloud, step, work: dns.append((cloud, step, work())) or dns[-1][2]  # type: ignore[assignment]
    s.ensure()
    printed = [a for cloud, _, result in dns if cloud == "dns" for a in result.actions]
    assert printed[0].startswith("no DNS provider")
    assert "apps.example.com. 60 IN A 198.18.0.20" in printed and "apps.example.com. 60 IN A 198.18.1.20" in printed
    assert f'apps.example.com. 60 IN TXT "heritage=cast,cast/owner={REF.uuid}"' in printed


def test_a_removed_worker_is_left_out_and_a_cloud_without_workers_loses_its_balancer():
    spec = build_spec(REGIONS, name="demo", region="us-east", cloud_flags=["aws:1:2", "gcp:0:1"], ingress=True)
    memories = {"aws": Memory("198.18.0.20"), "gcp": Memory("198.18.1.20")}
    s = steps(make_plan(spec, REGIONS), memories)
    s.ensure()
    s.ensure(exclude={"demo-aws-w2", "demo-gcp-w1"})
    assert memories["aws"].backends == ("demo-aws-w1",)
    assert memories["gcp"].backends is None  # deleted: no worker left there
    s.delete()
    assert memories["aws"].backends is None


class Passthrough(Memory):
    keeps_port = True  # as GCP's: delivers on 80/443, not on the NodePorts


def test_the_addresses_of_balancers_that_keep_the_port_become_the_controllers_external_ips():
    from provisioner.clouds.base import Ensured
    from provisioner.graph import Graph, Step
    from provisioner.kube.addons import IngressSettings
    from provisioner.kube.ingress_nginx import kustomization

    spec = build_spec(REGIONS, name="demo", region="us-east", cloud_flags=["aws:1:1", "gcp:0:1"], ingress=True)
    plan = make_plan(spec, REGIONS)
    s = steps(plan, {"aws": Memory("198.18.0.20"), "gcp": Passthrough("198.18.1.20")})
    graph = Graph()
    graph.add(Step("aws", "firewall-peers", lambda _: Ensured()))
    keys = s.add_steps(graph, after=(("aws", "firewall-peers"),))
    assert sorted(keys) == [("aws", "load-balancer"), ("gcp", "load-balancer")]
    assert s.external_ips() == ()  # nothing known before the steps ran
    for key in keys:
        graph.steps[key].work(None)
    assert s.external_ips() == ("198.18.1.20",)  # only the balancer that keeps the port
    settings = IngressSettings(external_ips=s.external_ips())
    assert "externalIPs:\n" in kustomization(settings.external_ips) and "198.18.1.20" in kustomization(("198.18.1.20",))
    assert "externalIPs" not in kustomization()
