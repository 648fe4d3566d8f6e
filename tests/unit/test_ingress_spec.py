"""Ingress in the spec and the plan: --ingress and its domain, DNS provider and e-mail (flags or
the file's `ingress:`), refused with the field and the allowed values; the plan's load balancers
(one per cloud with workers, backends its workers), the records, and the workers' ingress ports."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from provisioner.errors import InputError
from provisioner.plan import make_plan
from provisioner.regions import load_region_map
from provisioner.spec import build_spec, spec_from_dict

REGIONS = load_region_map()


def spec(**kw):
    kw.setdefault("name", "demo")
    kw.setdefault("region", "us-east")
    kw.setdefault("cloud_flags", ["aws:1:2", "gcp:1:0", "azure:0:1"])
    return build_spec(REGIONS, **kw)


@pytest.mark.parametrize(("kwargs", "field", "text"), [
    ({"ingress_domain": "apps"}, "--ingress-domain", "not a DNS name"),
    ({"ingress_domain": "apps..example.com"}, "--ingress-domain", "not a DNS name"),
    ({"ingress_domain": "-apps.example.com"}, "--ingress-domain", "not a DNS name"),
    ({"ingress_domain": "apps.example.com", "dns_provider": "route54"}, "--dns-provider", "unknown DNS provider"),
    ({"dns_provider": "route53"}, "--dns-provider", "needs a domain"),
    ({"ingress": True, "acme_email": "nobody"}, "--acme-email", "not an e-mail address"),
    ({"ingress": True, "cloud_flags": ["aws:1:0"]}, "--ingress", "no worker"),
])
def test_bad_ingress_values_name_the_field(kwargs, field, text):
    with pytest.raises(InputError) as err:
        spec(**kwargs)
    assert err.value.exit_code == 2 and err.value.field == field and text in str(err.value)


def test_unknown_provider_lists_the_allowed_ones():
    with pytest.raises(InputError) as err:
        spec(ingress_domain="apps.example.com", dns_provider="bind")
    assert err.value.allowed == "route53, clouddns, azuredns, digitalocean, none"


def test_no_ingress_unless_asked():
    assert spec().ingress is None
    assert make_plan(spec(), REGIONS).ingress is None
    assert "ingress" not in spec().to_dict()


def test_domain_implies_ingress_and_none_means_printed_records():
    s = spec(ingress_domain="Apps.Example.com.", dns_provider="none")
    assert s.ingress is not None and s.ingress.domain == "apps.example.com" and s.ingress.dns_provider is None


def test_file_ingress_and_flags_win(tmp_path):
    f = tmp_path / "cluster.yaml"
    f.write_text("name: demo\nregion: us-east\nclouds: {aws: {masters: 1, workers: 1}}\n"
                 "ingress: {domain: apps.example.com, dns_provider: route53, email: ops@example.com}\n")
    s = build_spec(REGIONS, name=None, file=f)
    assert s.ingress is not None and (s.ingress.domain, s.ingress.dns_provider, s.ingress.email) == \
        ("apps.example.com", "route53", "ops@example.com")
    s = build_spec(REGIONS, name=None, file=f, ingress_domain="web.example.com")
    assert s.ingress is not None and s.ingress.domain == "web.example.com"
    f.write_text("name: demo\nregion: us-east\nclouds: {aws: {masters: 1, workers: 1}}\ningress: {domian: x.y}\n")
    with pytest.raises(InputError) as err:
        build_spec(REGIONS, name=None, file=f)
    assert "ingress.domian" in err.value.field


def test_spec_round_trips_through_the_state():
    s = spec(ingress_domain="apps.example.com", dns_provider="route53", acme_email="ops@example.com")
    assert spec_from_dict(json.loads(json.dumps(s.to_dict()))) == s


def test_plan_has_a_balancer_per_cloud_with_workers_and_the_records():
    plan = make_plan(spec(ingress_domain="apps.example.com", dns_provider="route53"), REGIONS)
    assert plan.ingress is not None
    assert [(c, b.backends) for c, b in plan.ingress.balancers] == [
        ("aws", ("demo-aws-w1", "demo-aws-w2")), ("azure", ("demo-az-w1",))]
    records = plan.ingress.records("u-1", {"aws": "198.18.0.9", "azure": "198.18.2.9"})
    assert [(r.name, r.type, r.values) for r in records] == [
        ("apps.example.com", "A", ("198.18.0.9", "198.18.2.9")),
        ("apps.example.com", "TXT", ("heritage=cast,cast/owner=u-1",))]
    data = plan.to_dict()["ingress"]
    assert data["load_balancers"][0]["forwards"] == [{"port": 80, "node_port": 30080, "protocol": "tcp"},
                                                     {"port": 443, "node_port": 30443, "protocol": "tcp"}]
    assert data["load_balancers"][0]["health_check"] == {"protocol": "http", "port": 30080, "path": "/healthz"}


def test_workers_open_the_ingress_node_ports_only_with_ingress():
    def ingress_rules(s, role):
        cp = make_plan(s, REGIONS).cloud("aws")
        return [(r.protocol, r.ports, r.sources) for r in cp.firewall[role] if r.purpose == "ingress"]

    assert ingress_rules(spec(ingress=True), "worker") == [("tcp", "30080", ("0.0.0.0/0",)),
                                                          ("tcp", "30443", ("0.0.0.0/0",))]
    assert ingress_rules(spec(ingress=True), "master") == []
    assert ingress_rules(spec(), "worker") == []


def test_dry_run_shows_balancers_backends_and_records(tmp_path):
    out = subprocess.run([sys.executable, "-m", "provisioner.cli", "create-cluster", "demo", "--region", "us-east",
                          "--cloud", "aws:1:2", "--ingress-domain", "apps.example.com", "--dry-run",
                          "--output", "json"], capture_output=True, text=True, env={"HOME": str(tmp_path),
                                                                                   "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    ingress = json.loads(out.stdout)["ingress"]
    assert ingress["load_balancers"][0]["backends"] == ["demo-aws-w1", "demo-aws-w2"]
    assert [r["type"] for r in ingress["records"]] == ["A", "TXT"]


def test_bad_provider_on_the_command_line_exits_2_writing_nothing(tmp_path):
    out = subprocess.run([sys.executable, "-m", "provisioner.cli", "create-cluster", "demo", "--region", "us-east",
                          "--cloud", "aws:1:2", "--ingress-domain", "apps.example.com", "--dns-provider", "bind"],
                         capture_output=True, text=True, env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert out.returncode == 2
    assert "--dns-provider" in out.stderr and "route53" in out.stderr
    assert list(tmp_path.iterdir()) == []
