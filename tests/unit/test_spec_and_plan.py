"""The cluster spec from flags and files, and the plan built from it."""

import pytest

from provisioner.errors import InputError
from provisioner.plan import firewall_rules, make_plan
from provisioner.regions import load_region_map
from provisioner.spec import build_spec

REGIONS = load_region_map()


def spec(**kw):
    kw.setdefault("name", "demo")
    kw.setdefault("region", "us-east")
    return build_spec(REGIONS, **kw)


@pytest.mark.parametrize(
    ("kwargs", "field", "text"),
    [
        ({"region": "mars-1", "cloud_flags": ["aws:1:0"]}, "--region", "unknown region 'mars-1'"),
        ({"region": "ap-tokyo", "cloud_flags": ["digitalocean:1:0"]}, "--cloud", "not offered in region ap-tokyo"),
        ({"name": "Demo", "cloud_flags": ["aws:1:0"]}, "name", "not a DNS label"),
        ({"name": "my_cluster", "cloud_flags": ["aws:1:0"]}, "name", "not a DNS label"),
        ({"name": "a" * 31, "cloud_flags": ["aws:1:0"]}, "name", "31 characters"),
        ({"name": "9lives", "cloud_flags": ["aws:1:0"]}, "name", "not a DNS label"),
        ({"name": "demo\n", "cloud_flags": ["aws:1:0"]}, "name", "not a DNS label"),  # `$` let it pass
        ({"cloud_flags": ["aws:0:2"]}, "--cloud", "no master"),
        ({"cloud_flags": ["aws:-1:2"]}, "masters", "-1 is negative"),
        ({"cloud_flags": ["aws:one:2"]}, "masters", "'one' is not a whole number"),
        ({"cloud_flags": ["aws:1:2.5"]}, "workers", "'2.5' is not a whole number"),
        ({"cloud_flags": ["aws:1:0", "aws:0:1"]}, "--cloud", "aws is given more than once"),
        ({"cloud_flags": ["aws:1"]}, "--cloud", "not CLOUD:MASTERS:WORKERS"),
        ({"cloud_flags": ["ibm:1:1"]}, "--cloud", "unknown cloud 'ibm'"),
        ({"cloud_flags": ["aws:1:1"], "size_flags": ["aws:worker:t9.huge"]}, "aws worker size", "unknown size"),
        ({"cloud_flags": ["aws:1:1"], "ssh_cidrs": ["10.0.0.1/8"]}, "--ssh-cidr", "not an IPv4 network"),
        ({"cloud_flags": ["aws:1:1"], "api_cidrs": ["nope"]}, "--api-cidr", "'nope' is not an IPv4 network"),
        ({"cloud_flags": ["aws:1:1"], "nodeport_cidrs": ["10.0.0.1/8"]}, "--nodeport-cidr", "not an IPv4 network"),
        ({"cloud_flags": []}, "--cloud", "no cloud given"),
    ],
)
def test_rejections_name_the_field(kwargs, field, text):
    with pytest.raises(InputError) as err:
        spec(**kwargs)
    assert err.value.exit_code == 2
    assert err.value.field.startswith(field) or field in err.value.field
    assert text in str(err.value)


def test_rejection_lists_allowed_values():
    with pytest.raises(InputError) as err:
        spec(region="ap-tokyo", cloud_flags=["digitalocean:1:0"])
    assert err.value.allowed == "aws, gcp, azure"


def test_file_and_flags_merge_flags_win(tmp_path):
    f = tmp_path / "cluster.yaml"
    f.write_text(
        "name: fromfile\nregion: eu-frankfurt\nssh_cidr: 203.0.113.0/24\n"
        "clouds:\n  aws: {masters: 1, workers: 1, sizes: {worker: t3.large}}\n  gcp: {masters: 0, workers: 2}\n"
    )
    s = build_spec(REGIONS, name=None, file=f, cloud_flags=["gcp:0:3"])
    assert s.name == "fromfile" and s.region == "eu-frankfurt"
    assert s.cloud("gcp").workers == 3
    assert s.cloud("aws").sizes["worker"] == "t3.large"
    assert s.ssh_cidrs == ("203.0.113.0/24",)
    s2 = build_spec(REGIONS, name="override", region="us-east", file=f)
    assert (s2.name, s2.region) == ("override", "us-east")


def test_broken_yaml_names_the_line(tmp_path):
    f = tmp_path / "cluster.yaml"
    f.write_text("name: demo\nregion: us-east\nclouds:\n  aws: {masters: 1, workers: [\n")
    with pytest.raises(InputError, match=r"line \d+") as err:
        build_spec(REGIONS, name=None, file=f)
    assert str(f) in str(err.value)


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        build_spec(REGIONS, name=None, file=tmp_path / "nope.yaml")


def test_unknown_key_in_file(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("name: demo\nregoin: us-east\n")
    with pytest.raises(InputError, match="regoin"):
        build_spec(REGIONS, name=None, file=f)


def test_four_cloud_plan_addresses():
    s = spec(cloud_flags=["aws:1:1", "gcp:0:1", "azure:0:1", "digitalocean:0:1"])
    plan = make_plan(s, REGIONS)
    subnets = {c.cloud: c.subnet_cidr for c in plan.clouds}
    assert subnets == {
        "aws": "10.10.0.0/24",
        "gcp": "10.0.0.0/24",
        "azure": "10.20.0.0/24",
        "digitalocean": "10.112.0.0/20",
    }
    mesh = [n.mesh_ip for n in plan.nodes]
    assert len(mesh) == 5 and len(set(mesh)) == 5
    assert all(ip.startswith("10.4.") for ip in mesh)
    assert plan.latency_verdict == "warn"


def test_plan_keeps_existing_nodes_and_never_reuses_names_or_addresses():
    s = spec(cloud_flags=["aws:1:2"])
    plan = make_plan(
        s,
        REGIONS,
        existing_nodes={"demo-aws-m1": "10.4.0.1", "demo-aws-w2": "10.4.0.3"},
        ever_allocated_mesh=["10.4.0.1", "10.4.0.2", "10.4.0.3"],
        taken_indexes={("aws", "master"): [1], ("aws", "worker"): [1, 2]},
    )
    got = {n.name: n.mesh_ip for n in plan.nodes}
    # w1 was removed earlier: its name and address stay retired
    assert got == {"demo-aws-m1": "10.4.0.1", "demo-aws-w2": "10.4.0.3", "demo-aws-w3": "10.4.0.4"}


def test_plan_digitalocean_range_avoids_the_accounts_vpcs():
    s = spec(cloud_flags=["aws:1:0", "digitalocean:0:1"])
    plan = make_plan(s, REGIONS, account_ranges=["10.112.0.0/20"])
    assert plan.cloud("digitalocean").network_cidr == "10.112.16.0/20"


def test_firewall_rules_follow_the_design():
    master = {(r.protocol, r.ports) for r in firewall_rules("master", ["198.51.100.0/24"])}
    worker = {(r.protocol, r.ports) for r in firewall_rules("worker", ["198.51.100.0/24"])}
    assert master == {("tcp", "22"), ("tcp", "6443"), ("udp", "51820")}
    assert worker == {("tcp", "22"), ("udp", "51820")}  # NodePorts closed unless asked
    ssh = next(r for r in firewall_rules("worker", ["198.51.100.0/24"]) if r.ports == "22")
    assert ssh.sources == ("198.51.100.0/24",)


def _rules(plan, cloud, role):
    return {(r.protocol, r.ports): r.sources for r in plan.cloud(cloud).firewall[role]}


def test_planned_rules_open_only_what_was_asked():
    # Issue 21 item 5: --ssh-cidr narrowed only tcp/22; 6443, 51820 and the NodePorts stayed 0.0.0.0/0.
    s = spec(cloud_flags=["aws:1:1", "gcp:0:1"], api_cidrs=["203.0.113.0/24", "198.51.100.7/32"])
    plan = make_plan(s, REGIONS, node_public_ips=["198.18.0.9", "198.18.4.2", "198.18.0.10"])
    wireguard = ("198.18.0.9/32", "198.18.0.10/32", "198.18.4.2/32")  # every node of every cloud, /32 each
    for cloud in ("aws", "gcp"):
        master, worker = _rules(plan, cloud, "master"), _rules(plan, cloud, "worker")
        assert master[("tcp", "6443")] == ("203.0.113.0/24", "198.51.100.7/32")
        assert master[("udp", "51820")] == worker[("udp", "51820")] == wireguard
        assert ("tcp", "30000-32767") not in worker and ("udp", "30000-32767") not in worker
        assert all("0.0.0.0/0" not in sources for key, sources in {**master, **worker}.items() if key[1] != "22")
    shown = plan.to_dict()["clouds"][0]["firewall"]["worker"]
    assert {"protocol": "udp", "ports": "51820", "sources": list(wireguard), "purpose": "wireguard"} in shown


def test_nodeports_open_only_to_the_cidrs_asked_for():
    s = spec(cloud_flags=["aws:1:1"], nodeport_cidrs=["192.0.2.0/24"])
    worker = _rules(make_plan(s, REGIONS), "aws", "worker")
    assert worker[("tcp", "30000-32767")] == worker[("udp", "30000-32767")] == ("192.0.2.0/24",)
    assert ("tcp", "30000-32767") not in _rules(make_plan(s, REGIONS), "aws", "master")


def test_api_and_nodeport_cidrs_from_the_cluster_file(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("name: f\nregion: us-east\nclouds: {aws: {masters: 1}}\n"
                    "api_cidr: 203.0.113.0/24\nnodeport_cidr: [192.0.2.0/24, 198.51.100.0/24]\n")
    s = build_spec(REGIONS, name=None, file=path)
    assert s.api_cidrs == ("203.0.113.0/24",)
    assert s.nodeport_cidrs == ("192.0.2.0/24", "198.51.100.0/24")
    assert spec(cloud_flags=["aws:1:0"]).api_cidrs == ("0.0.0.0/0",)  # the default stays as it was
    assert spec(cloud_flags=["aws:1:0"]).nodeport_cidrs == ()


def test_wireguard_before_any_node_has_an_address_is_no_rule_for_the_clouds():
    from provisioner.plan import enforceable

    plan = make_plan(spec(cloud_flags=["aws:1:1"]), REGIONS)
    assert _rules(plan, "aws", "worker")[("udp", "51820")] == ()  # shown in the plan, from no one yet
    sent = enforceable(plan.cloud("aws").firewall)
    assert all(r.ports != "51820" for rules in sent.values() for r in rules)
