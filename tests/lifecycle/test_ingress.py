"""Ingress end to end in the sandbox, through `cast` as users run it, with real traffic: every
worker runs a tiny HTTP server on the ingress NodePorts answering its node name; the app's name
resolves through the sandbox's DNS server to one address per cloud; each load balancer sends
traffic only to its own cloud's workers, to every one of them, and none to a worker whose server
stopped (its health check marks it down) or that remove-node takes away; a name another owner
holds is refused (exit 4, nothing changed); kill -9 during the ingress steps and a re-run make
no duplicate; delete-cluster leaves no load balancer, address or record of the cluster and keeps
the user's own records.

Parametrized over the clouds whose load-balancer module exists (provisioner/clouds/<cloud>_lb).
"""

from __future__ import annotations

import json
import os
import signal
import urllib.error
import urllib.request
import uuid as uuidlib
from collections import Counter

import boto3
import pytest

from provisioner.clouds.balancing import balances, open_balancers
from provisioner.clouds.base import CloudTarget, ClusterRef
from provisioner.regions import load_region_map

from .conftest import SKIP, wait_for

pytestmark = pytest.mark.skipif(SKIP is not None, reason=SKIP or "")

REGION = "eu-frankfurt"
RELAXED = ["--latency-threshold-ms", "1000"]
CLOUDS = [c for c in ("aws", "gcp", "azure", "digitalocean") if balances(c)]
ZONE = "ingress.test"
APP = f"app.{ZONE}"
USER_RECORD = (f"www.{ZONE}", "203.0.113.7")
SERVER = b'''
import http.server, os, sys
name = sys.argv[1]
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = (b"ok" if self.path == "/healthz" else name.encode())
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer.allow_reuse_address = True
servers = [http.server.ThreadingHTTPServer(("0.0.0.0", port), Handler) for port in (30080, 30443)]
import threading
for s in servers[1:]:
    threading.Thread(target=s.serve_forever, daemon=True).start()
open("/root/web.pid", "w").write(str(os.getpid()))
servers[0].serve_forever()
'''


def aws(cast, service: str):
    region = load_region_map().region(REGION).clouds["aws"].region
    return boto3.client(service, endpoint_url=cast.env["AWS_ENDPOINT_URL"], region_name=region,
                        aws_access_key_id=cast.env["AWS_ACCESS_KEY_ID"],
                        aws_secret_access_key=cast.env["AWS_SECRET_ACCESS_KEY"])


def zone_id(cast) -> str:
    zones = aws(cast, "route53").list_hosted_zones()["HostedZones"]
    return next(z["Id"] for z in zones if z["Name"] == f"{ZONE}.")


def records(cast) -> dict[tuple[str, str], list[str]]:
    found = aws(cast, "route53").list_resource_record_sets(HostedZoneId=zone_id(cast))["ResourceRecordSets"]
    return {(r["Name"].rstrip("."), r["Type"]): sorted(v["Value"] for v in r.get("ResourceRecords", []))
            for r in found if r["Type"] in ("A", "TXT")}


def add_record(cast, name: str, kind: str, value: str) -> None:
    aws(cast, "route53").change_resource_record_sets(HostedZoneId=zone_id(cast), ChangeBatch={"Changes": [
        {"Action": "CREATE", "ResourceRecordSet": {"Name": f"{name}.", "Type": kind, "TTL": 300,
                                                   "ResourceRecords": [{"Value": value}]}}]})


def balancers(cast, name: str, uuid: str) -> dict[str, object]:
    """Each cloud's load balancer of the cluster as its API reports it (None when it has none)."""
    saved = dict(os.environ)
    os.environ.update(cast.env)
    try:
        region = load_region_map().region(REGION)
        return {c: open_balancers(c, region.clouds[c].region, region.clouds[c].zone).find_load_balancer(
            ClusterRef(name, uuid)) for c in CLOUDS}
    finally:
        os.environ.clear()
        os.environ.update(saved)


def resolve(cast, name: str) -> list[str]:
    """The A records of `name`, asked of the sandbox's DNS server over UDP."""
    from dnslib import QTYPE, DNSRecord

    state = json.loads(cast("sandbox", "status", "--output", "json").stdout)
    reply = DNSRecord.parse(DNSRecord.question(name, "A").send(state["dns"], 53, timeout=3))
    return sorted(str(rr.rdata) for rr in reply.rr if rr.rtype == QTYPE.A)


def fetch(address: str, port: int = 80) -> str | None:
    """The body of GET / through a load balancer, or None when the connection fails."""
    try:
        with urllib.request.urlopen(f"http://{address}:{port}/", timeout=5) as response:
            return response.read().decode()
    except (urllib.error.URLError, OSError):
        return None


def answers(address: str, count: int, port: int = 80) -> Counter[str | None]:
    return Counter(fetch(address, port) for _ in range(count))


def start_servers(cast, uuid: str, nodes: list[str]) -> None:
    with cast.ssh(uuid) as (pool, access):
        for node in nodes:
            pool.upload(access[node], "/root/web.py", SERVER, 0o644)
            pool.check(access[node], f"nohup python3 /root/web.py {node} >/root/web.log 2>&1 </dev/null &")
    for node in nodes:
        wait_for(lambda n=node: _serving(cast, uuid, n), timeout=30, what=f"the web server on {node}")


def _serving(cast, uuid: str, node: str) -> bool:
    with cast.ssh(uuid) as (pool, access):
        return pool.run(access[node], "test -s /root/web.pid").status == 0


def stop_server(cast, uuid: str, node: str) -> None:
    with cast.ssh(uuid) as (pool, access):
        pool.check(access[node], "kill $(cat /root/web.pid) && rm /root/web.pid")


@pytest.fixture(scope="module")
def app(cast):
    """One cluster for the whole module: a master on the first cloud, two workers on each cloud
    with load balancing, ingress at app.ingress.test in the user's Route 53 zone (which holds a
    record of the user's own), and the web servers running."""
    route53 = aws(cast, "route53")
    route53.create_hosted_zone(Name=ZONE, CallerReference=uuidlib.uuid4().hex)
    add_record(cast, USER_RECORD[0], "A", USER_RECORD[1])
    clouds = [arg for i, c in enumerate(CLOUDS) for arg in ("--cloud", f"{c}:{1 if i == 0 else 0}:2")]
    created = cast("create-cluster", "ing", "--region", REGION, *clouds, *RELAXED, "--ingress-domain", APP,
                   "--dns-provider", "route53", "--output", "json", timeout=600)
    cluster = json.loads(created.stdout)
    workers = {c: sorted(n["name"] for n in cluster["nodes"] if n["cloud"] == c and n["role"] == "worker")
               for c in CLOUDS}
    start_servers(cast, cluster["uuid"], [n for names in workers.values() for n in names])
    return {"uuid": cluster["uuid"], "workers": workers, "nodes": {n["name"]: n for n in cluster["nodes"]}}


def addresses(cast, app) -> dict[str, str]:
    found = balancers(cast, "ing", app["uuid"])
    assert all(found.values()), found
    return {c: b.address for c, b in found.items()}  # type: ignore[union-attr]


def test_the_name_resolves_to_one_address_per_cloud(cast, app):
    by_cloud = addresses(cast, app)
    assert len(set(by_cloud.values())) == len(CLOUDS)
    assert wait_for(lambda: resolve(cast, APP) == sorted(by_cloud.values()) or None, timeout=30,
                    what="the sandbox DNS to answer the A record set")
    assert resolve(cast, USER_RECORD[0]) == [USER_RECORD[1]]  # the user's own record, served as it is


def test_status_shows_the_domain_and_each_balancer_with_its_workers(cast, app):
    by_cloud = addresses(cast, app)
    shown = json.loads(cast("status", "ing", "--output", "json").stdout)["ingress"]
    assert shown["domain"] == APP
    assert {b["cloud"]: b["address"] for b in shown["load_balancers"]} == by_cloud
    assert {b["cloud"]: sorted(b["backends"]) for b in shown["load_balancers"]} == app["workers"]
    text = cast("status", "ing").stdout
    assert f"ingress: {APP} -> " in text and all(address in text for address in by_cloud.values())


@pytest.mark.parametrize("cloud", CLOUDS)
def test_each_balancer_sends_only_to_its_own_workers_and_to_every_one(cast, app, cloud):
    address = addresses(cast, app)[cloud]
    mine = set(app["workers"][cloud])
    wait_for(lambda: set(answers(address, 12)) == mine or None, timeout=60,
             what=f"every {cloud} worker to answer through its load balancer")
    seen = answers(address, 40)
    assert set(seen) == mine, seen  # nobody else's workers, no failed request
    assert set(answers(address, 12, port=443)) == mine  # tcp 443 goes to the other NodePort


def test_a_stopped_server_is_marked_down_and_gets_no_traffic(cast, app):
    cloud = CLOUDS[0]
    address = addresses(cast, app)[cloud]
    down, other = app["workers"][cloud]
    stop_server(cast, app["uuid"], down)
    # until the health check marks it down, a connection sent its way finds nobody listening
    wait_for(lambda: set(answers(address, 6)) == {other} or None, timeout=30, what=f"{down} to be marked down")
    seen = answers(address, 30)
    assert set(seen) == {other}, seen  # no traffic to it, and no request lost
    start_servers(cast, app["uuid"], [down])
    wait_for(lambda: down in answers(address, 12) or None, timeout=30, what=f"{down} to be back")


def test_a_name_owned_by_another_is_refused_and_nothing_changes(cast, app):
    taken = f"taken.{ZONE}"
    add_record(cast, taken, "TXT", '"heritage=external-dns,external-dns/owner=default"')
    before = records(cast)
    refused = cast("create-cluster", "other", "--region", REGION, "--cloud", f"{CLOUDS[0]}:1:1", *RELAXED,
                   "--ingress-domain", taken, "--dns-provider", "route53", check=False)
    assert refused.returncode == 4, refused.stderr
    assert "owned by another owner" in refused.stderr
    assert records(cast) == before
    assert "other" not in [c["name"] for c in json.loads(cast("list", "--output", "json").stdout)]


def test_reconcile_repairs_a_balancer_deleted_out_of_band(cast, app):
    cloud = CLOUDS[0]
    before = addresses(cast, app)
    saved = dict(os.environ)
    os.environ.update(cast.env)
    try:
        c = load_region_map().region(REGION).clouds[cloud]
        target = CloudTarget(ClusterRef("ing", app["uuid"]), c.region, c.zone, "", "", {}, {})
        open_balancers(cloud, c.region, c.zone).delete_load_balancer(target)  # as a user in the console would
    finally:
        os.environ.clear()
        os.environ.update(saved)
    assert balancers(cast, "ing", app["uuid"])[cloud] is None
    dry = json.loads(cast("reconcile", "ing", "--dry-run", "--output", "json").stdout)["findings"]
    assert any(line.startswith(f"{cloud}: ") and "load balancer" in line for line in dry), dry
    assert balancers(cast, "ing", app["uuid"])[cloud] is None  # a dry run changes nothing
    cast("reconcile", "ing", timeout=300)
    after = addresses(cast, app)
    assert set(balancers(cast, "ing", app["uuid"])[cloud].backends) == set(app["workers"][cloud])  # type: ignore
    assert wait_for(lambda: resolve(cast, APP) == sorted(after.values()) or None, timeout=30,
                    what="the DNS to hold the repaired addresses")
    wait_for(lambda: set(answers(after[cloud], 12)) == set(app["workers"][cloud]) or None, timeout=60,
             what="traffic through the repaired load balancer")
    assert len(before) == len(after)


def test_remove_node_takes_the_worker_out_of_its_balancer_before_it_goes(cast, app):
    cloud = CLOUDS[0]
    gone, kept = app["workers"][cloud]
    cast("remove-node", "ing", gone, timeout=300)
    journal = [row for row in cast.journal("ing")]
    out = max(i for i, row in enumerate(journal) if row == (cloud, "load-balancer", "end"))
    deleted = max(i for i, row in enumerate(journal) if row == (cloud, "remove-vm", "begin"))
    assert out < deleted
    assert balancers(cast, "ing", app["uuid"])[cloud].backends == (kept,)  # type: ignore[union-attr]
    assert set(answers(addresses(cast, app)[cloud], 20)) == {kept}
    app["workers"][cloud] = [kept]


def test_kill_9_during_the_ingress_steps_then_again_makes_no_duplicate(cast, app):
    domain = f"kill.{ZONE}"
    args = ["create-cluster", "kil", "--region", REGION, "--cloud", f"{CLOUDS[0]}:1:1", *RELAXED,
            "--ingress-domain", domain, "--dns-provider", "route53"]
    run = cast.start(*args)
    wait_for(lambda: (CLOUDS[0], "load-balancer", "begin") in cast.journal("kil") or run.poll() is not None,
             timeout=300, what="the load-balancer step to start")
    os.kill(run.pid, signal.SIGKILL)
    run.wait()
    cast(*args, timeout=600)
    uuid = cast.cluster("kil")["uuid"]
    elbv2 = aws(cast, "elbv2")
    ours = []
    for lb in elbv2.describe_load_balancers()["LoadBalancers"]:
        tags = elbv2.describe_tags(ResourceArns=[lb["LoadBalancerArn"]])["TagDescriptions"][0]["Tags"]
        if {"Key": "cast-cluster-uuid", "Value": uuid} in tags:
            ours.append(lb["LoadBalancerArn"])
    assert len(ours) == 1
    eips = aws(cast, "ec2").describe_addresses(Filters=[{"Name": "tag:cast-cluster-uuid", "Values": [uuid]}])
    assert len(eips["Addresses"]) == 1
    found = records(cast)
    assert found[(domain, "A")] == [eips["Addresses"][0]["PublicIp"]]
    assert found[(domain, "TXT")] == [f'"heritage=cast,cast/owner={uuid}"']
    cast("delete-cluster", "kil", "--yes", timeout=600)
    assert (domain, "A") not in records(cast)


def test_delete_cluster_leaves_no_balancer_address_or_record_and_keeps_the_users(cast, app):
    by_cloud = addresses(cast, app)
    cast("delete-cluster", "ing", "--yes", timeout=600)
    assert balancers(cast, "ing", app["uuid"]) == {c: None for c in CLOUDS}
    eips = aws(cast, "ec2").describe_addresses(Filters=[{"Name": "tag:cast-cluster-uuid", "Values": [app["uuid"]]}])
    assert eips["Addresses"] == []
    groups = aws(cast, "elbv2").describe_target_groups()["TargetGroups"]
    assert not any(g["TargetGroupName"].startswith("cast-" + app["uuid"].replace("-", "")[:8]) for g in groups)
    left = records(cast)
    assert (APP, "A") not in left and (APP, "TXT") not in left
    assert left[(USER_RECORD[0], "A")] == [USER_RECORD[1]]
    for address in by_cloud.values():  # the sandbox serves them no more
        wait_for(lambda a=address: fetch(a) is None, timeout=30, what=f"{address} to stop answering")
    assert wait_for(lambda: resolve(cast, APP) == [] or None, timeout=30, what="the name to go from the DNS")
