"""The starter inventory of `dnabox init`: one core site, one edge site, one end device."""

from __future__ import annotations

SCHEMA_COMMENT = "# yaml-language-server: $schema=../schema/inventory.schema.json\n"

STARTER = """\
# yaml-language-server: $schema=../schema/inventory.schema.json
# The fleet {name}: every box dnabox manages, described once. Your editor validates and
# completes this file from schema/inventory.schema.json; `dnabox inventory validate` checks
# what a schema cannot (addresses inside subnets, names that exist, version skew).
# Reference of every key: https://github.com/dnabox/dnabox/blob/main/docs/inventory.md
name: {name}
description: Starter fleet - one core site, one edge site, one end device

defaults:
  ssh:
    user: root                      # the account dnabox logs in as (root, or sudo-less root)
    key: ~/.ssh/id_ed25519          # private key; the boxes trust its public half
    known_hosts: ~/.ssh/known_hosts # host keys are checked strictly, never added blindly

# The SmartX planes: management (SSH, P+M), control (C) and data (D), each an OVS bridge.
planes:
  - name: P+M
    purpose: management
    cidr: 10.10.0.0/16
  - name: C
    purpose: control
    cidr: 10.20.0.0/16
    bridge: br-ctl
  - name: D
    purpose: data
    cidr: 10.30.0.0/16
    bridge: br-data

# Sites: where boxes stand. The tier (core, edge, end) decides roles, labels and taints.
sites:
  - name: core
    tier: core
    region: datacenter
    subnets:
      P+M: {{cidr: 10.10.1.0/24, gateway: 10.10.1.1}}
      D: {{cidr: 10.30.1.0/24, gateway: 10.30.1.1}}
  - name: edge-1
    tier: edge
    region: campus
    subnets:
      P+M: {{cidr: 10.10.2.0/24, gateway: 10.10.2.1}}
      D: {{cidr: 10.30.2.0/24, gateway: 10.30.2.1}}
  - name: end-1
    tier: end
    region: campus
    subnets:
      P+M: {{cidr: 10.10.3.0/24, gateway: 10.10.3.1}}
      D: {{cidr: 10.30.3.0/24, gateway: 10.30.3.1}}

# Boxes: the servers (and devices). `address` is the management address SSH goes to.
boxes:
  - name: core-1
    site: core
    size: large
    address: 10.10.1.11
    interfaces:
      D: {{nic: eth1, address: 10.30.1.11/24}}
    overlay_addresses:
      dataplane: 10.250.0.11/24
  - name: edge-1-1
    site: edge-1
    size: medium
    address: 10.10.2.11
    interfaces:
      D: {{nic: eth1, address: 10.30.2.11/24}}
    overlay_addresses:
      dataplane: 10.250.0.21/24
  - name: end-1-1
    site: end-1
    size: small
    address: 10.10.3.11
    interfaces:
      D: {{nic: eth1, address: 10.30.3.11/24}}
    overlay_addresses:
      dataplane: 10.250.0.31/24

# The VXLAN overlay between sites, carried on the data plane.
overlays:
  - name: dataplane
    vni: 1001
    plane: D
    bridge: br-vxlan
    cidr: 10.250.0.0/24
    topology: mesh

# Kubernetes clusters: one per tier here; each gets its own Pulumi stack ({name}-<cluster>).
clusters:
  - name: core
    distribution: kubeadm
    control_planes: [core-1]
    runtimes: [runc]
    mesh: istio
  - name: edge
    distribution: k3s
    control_planes: [edge-1-1]
    workers: [end-1-1]
    pod_cidr: 10.245.0.0/16
    service_cidr: 10.112.0.0/12
    runtimes: [runc]
    mesh: linkerd

# Binaries Debian does not ship (kubeadm/kubelet/kubectl, k3s): declare them with a sha256
# before `dnabox up` forms the clusters, or skip the kubernetes role until then.
bootstrap:
  skip_roles: [kata, apptainer, kubernetes]
"""


def starter_inventory(name: str) -> str:
    return STARTER.format(name=name)
