#!/usr/bin/env python3
"""Writes Demo/cluster-snapshot.json: a kubectl `get pods,services,endpointslices,nodes,
replicasets,deployments -A -o json` style List whose objects hold the addresses of the demo
capture (Demo/pod-traffic.pcap.gz, made by shared/bench/gen/genpcap.c).

genpcap's address plan: 16 nodes, node N has pods 10.244.N.H (IPv6 fd00:10:244:N::H, H in hex)
and InternalIP 10.0.0.(10+N) (the VXLAN outer addresses); CoreDNS pods are 10.244.0.2 and .3.
Which addresses are servers and which clients comes from the capture's flows:

    podtap-flows --format csv demo.pcap | scripts/gen-demo-snapshot.py > Demo/cluster-snapshot.json

Servers are grouped by port into Deployments/StatefulSets with a Service each; clients into a
few workloads (Deployments, a CronJob's Jobs, a DaemonSet). Besides the kinds of the kubectl
command above the List also holds the StatefulSets, DaemonSets and Jobs (add
`statefulsets,daemonsets,jobs` to the command), so pods name their top-level owner (CronJob).
Deterministic: same input, same file.
"""
import csv
import hashlib
import ipaddress
import json
import sys
import uuid

NODES = 16
NS_UUID = uuid.UUID("6f1d2a4e-4b1c-4c2e-9a57-5d9c0e7b1a10")
ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # the apiserver's generateName alphabet


def suffix(seed, n=5):
    h = hashlib.sha256(seed.encode()).digest()
    return "".join(ALPHABET[b % len(ALPHABET)] for b in h[:n])


def uid(seed):
    return str(uuid.uuid5(NS_UUID, seed))


# port -> (namespace, app, controller kind, service ClusterIP, protocol)
SERVERS = {
    53: ("kube-system", "coredns", "Deployment", "10.96.0.10", "UDP"),
    80: ("shop", "web", "Deployment", "10.96.24.50", "TCP"),
    8080: ("shop", "api", "Deployment", "10.96.95.222", "TCP"),
    443: ("shop", "gateway", "Deployment", "10.96.143.7", "TCP"),
    5432: ("data", "postgres", "StatefulSet", "10.96.54.32", "TCP"),
    6379: ("data", "redis", "StatefulSet", "10.96.63.79", "TCP"),
}
SERVICE_NAME = {"coredns": "kube-dns"}
# clients: (namespace, app, owner chain)
CLIENTS = [
    ("shop", "frontend", "Deployment"),
    ("shop", "checkout", "Deployment"),
    ("batch", "report", "CronJob"),
    ("monitoring", "prober", "DaemonSet"),
]
RESOURCE_VERSION = [1000]


def rv():
    RESOURCE_VERSION[0] += 1
    return str(RESOURCE_VERSION[0])


def v4_of(text):
    a = ipaddress.ip_address(text)
    if a.version == 4:
        return str(a)
    p = a.packed  # fd00:10:244:N::H
    if p[:6] != bytes([0xFD, 0x00, 0x00, 0x10, 0x02, 0x44]):
        return None
    return "10.244.%d.%d" % (int.from_bytes(p[6:8], "big"), int.from_bytes(p[14:16], "big"))


def v6_of(v4):
    _, _, n, h = (int(x) for x in v4.split("."))
    return str(ipaddress.ip_address("fd00:10:244:%x::%x" % (n, h)))


def meta(name, namespace, seed, labels=None, owner=None):
    m = {"name": name, "uid": uid(seed), "resourceVersion": rv(), "creationTimestamp": "2026-11-21T00:00:00Z"}
    if namespace:
        m["namespace"] = namespace
    if labels:
        m["labels"] = labels
    if owner:
        kind, oname, api = owner
        m["ownerReferences"] = [{"apiVersion": api, "kind": kind, "name": oname, "uid": uid(kind + "/" + (namespace or "") + "/" + oname),
                                 "controller": True, "blockOwnerDeletion": True}]
    return m


def main():
    servers = {}  # v4 -> port
    clients = set()
    for row in csv.DictReader(sys.stdin):
        if row["carries_tunnel"] == "1":
            continue
        srv = "b" if row["client"] == "a" else "a"
        cli = "a" if srv == "b" else "b"
        port = int(row[srv + "_port"])
        s4 = v4_of(row[srv + "_ip"])
        if port in SERVERS and s4:
            servers.setdefault(s4, port)
        c4 = v4_of(row[cli + "_ip"])
        if c4:
            clients.add(c4)
    clients -= set(servers)
    servers.setdefault("10.244.0.2", 53)
    servers.setdefault("10.244.0.3", 53)

    items = []
    for n in range(NODES):
        items.append({"apiVersion": "v1", "kind": "Node",
                      "metadata": meta("node-%d" % n, None, "node-%d" % n,
                                       {"kubernetes.io/hostname": "node-%d" % n, "kubernetes.io/os": "linux"}),
                      "spec": {"podCIDR": "10.244.%d.0/24" % n, "podCIDRs": ["10.244.%d.0/24" % n, "fd00:10:244:%x::/64" % n]},
                      "status": {"addresses": [{"type": "InternalIP", "address": "10.0.0.%d" % (10 + n)},
                                               {"type": "Hostname", "address": "node-%d" % n}]}})

    def controller(namespace, app, kind, labels):
        """Adds an apps/v1 workload (a Deployment with its ReplicaSet) and returns what its pods name as owner."""
        if kind == "Deployment":
            rs = "%s-%s" % (app, suffix(app + "-rs", 10))
            items.append({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta(app, namespace, "Deployment/%s/%s" % (namespace, app), labels)})
            items.append({"apiVersion": "apps/v1", "kind": "ReplicaSet",
                          "metadata": meta(rs, namespace, "ReplicaSet/%s/%s" % (namespace, rs), labels, ("Deployment", app, "apps/v1"))})
            return ("ReplicaSet", rs, "apps/v1")
        items.append({"apiVersion": "apps/v1", "kind": kind, "metadata": meta(app, namespace, "%s/%s/%s" % (kind, namespace, app), labels)})
        return (kind, app, "apps/v1")

    def pod(ip, namespace, app, owner, ports, ordinal=None):
        node = int(ip.split(".")[2])
        name = "%s-%d" % (app, ordinal) if ordinal is not None else "%s-%s" % (owner[1], suffix(ip))
        return {"apiVersion": "v1", "kind": "Pod",
                "metadata": meta(name, namespace, "pod/" + ip, {"app": app}, owner),
                "spec": {"nodeName": "node-%d" % node,
                         "containers": [{"name": app, "image": "registry.example/%s:1.0" % app,
                                         "ports": [{"containerPort": p, "protocol": pr} for p, pr in ports]}]},
                "status": {"phase": "Running", "hostIP": "10.0.0.%d" % (10 + node), "podIP": ip,
                           "podIPs": [{"ip": ip}, {"ip": v6_of(ip)}]}}

    # Servers: one workload and one Service per port.
    for port in sorted(SERVERS):
        namespace, app, kind, cluster_ip, proto = SERVERS[port]
        ips = sorted((ip for ip, p in servers.items() if p == port), key=ipaddress.ip_address)
        if not ips:
            continue
        labels = {"app": app}
        owner = controller(namespace, app, kind, labels)
        pods = []
        for i, ip in enumerate(ips):
            p = pod(ip, namespace, app, owner, [(port, proto)], i if kind == "StatefulSet" else None)
            pods.append(p)
            items.append(p)
        service = SERVICE_NAME.get(app, app)
        items.append({"apiVersion": "v1", "kind": "Service",
                      "metadata": meta(service, namespace, "Service/%s/%s" % (namespace, service), labels),
                      "spec": {"type": "ClusterIP", "clusterIP": cluster_ip, "clusterIPs": [cluster_ip],
                               "selector": {"app": app}, "ports": [{"name": app, "port": port, "protocol": proto, "targetPort": port}]}})
        slice_name = "%s-%s" % (service, suffix(service + "-slice"))
        items.append({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "addressType": "IPv4",
                      "metadata": meta(slice_name, namespace, "EndpointSlice/%s/%s" % (namespace, slice_name),
                                       {"kubernetes.io/service-name": service, "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"},
                                       ("Service", service, "v1")),
                      "endpoints": [{"addresses": [p["status"]["podIP"]], "conditions": {"ready": True, "serving": True, "terminating": False},
                                     "nodeName": p["spec"]["nodeName"],
                                     "targetRef": {"kind": "Pod", "name": p["metadata"]["name"], "namespace": namespace, "uid": p["metadata"]["uid"]}}
                                    for p in pods],
                      "ports": [{"name": app, "port": port, "protocol": proto}]})

    # Clients: spread over a few workloads by address.
    groups = {}
    for ip in sorted(clients, key=ipaddress.ip_address):
        groups.setdefault(CLIENTS[int(hashlib.sha256(ip.encode()).hexdigest(), 16) % len(CLIENTS)], []).append(ip)
    for (namespace, app, kind), ips in sorted(groups.items()):
        labels = {"app": app}
        if kind == "CronJob":
            # One Job per run; the Job's controller is the CronJob (CronJobs are not in the List).
            owners = [("Job", "%s-2934%05d" % (app, i), "batch/v1") for i in range(len(ips))]
            for _, job, _ in owners:
                items.append({"apiVersion": "batch/v1", "kind": "Job",
                              "metadata": meta(job, namespace, "Job/%s/%s" % (namespace, job), labels, ("CronJob", app, "batch/v1"))})
        else:
            owners = [controller(namespace, app, kind, labels)]
        for i, ip in enumerate(ips):
            owner = owners[i % len(owners)]
            items.append(pod(ip, namespace, app, owner, []))

    items.sort(key=lambda o: (["Pod", "Service", "Node", "EndpointSlice", "ReplicaSet", "Deployment", "StatefulSet", "DaemonSet", "Job"].index(o["kind"]),
                              o["metadata"].get("namespace", ""), o["metadata"]["name"]))
    json.dump({"apiVersion": "v1", "items": items, "kind": "List", "metadata": {"resourceVersion": ""}}, sys.stdout, indent=4)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
