"""Bad fleet files: each problem is reported with its file, exact line, field and a fix.

Every case is a small complete fleet: the valid BASE below with a textual edit. The
line a problem must be reported at is marked in the edited text with a `# <-` comment
(or given as a number), so the expectation sits next to the YAML it is about.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from dnabox.errors import InventoryError, Problem
from dnabox.inventory import load_fleet

BASE = """\
name: t
planes:
  - {name: M, purpose: management, cidr: 10.1.0.0/16}
  - {name: D, purpose: data, cidr: 10.3.0.0/16, mtu: 9000, bridge: br-data}
sites:
  - name: core
    tier: core
    subnets:
      M: {cidr: 10.1.1.0/24, gateway: 10.1.1.1}
  - name: edge
    tier: edge
    subnets:
      M: {cidr: 10.1.2.0/24}
  - name: end
    tier: end
boxes:
  - name: core-1
    site: core
    address: 10.1.1.11
    ssh: {port: 2222}
    interfaces:
      D: {nic: eth1, address: 10.3.1.11/24}
    overlay_addresses: {ov: 10.250.0.11/24}
  - name: edge-1
    site: edge
    address: 10.1.2.11
    interfaces:
      D: {nic: eth1, address: 10.3.2.11/24}
    overlay_addresses: {ov: 10.250.0.21/24}
  - name: edge-2
    site: edge
    address: 10.1.2.12
  - name: end-1
    site: end
    address: 10.1.9.11
overlays:
  - name: ov
    vni: 100
    plane: D
    cidr: 10.250.0.0/24
clusters:
  - name: core
    control_planes: [core-1]
    runtimes: [runc, kata, apptainer]
    mesh: istio
  - name: edge
    control_planes: [edge-1]
    workers: [edge-2]
  - name: end
    control_planes: [end-1]
    mesh: linkerd
artifacts:
  files:
    - name: kubeadm
      url: https://dl.k8s.io/kubeadm
      sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
      role: kubernetes
"""

MARK = "# <-"
END = "    mesh: linkerd\n"  # the last line of the end-tier cluster
SHA = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"


def edit(*changes: tuple[str, str]) -> str:
    """BASE with each ``old`` (which must occur exactly once) replaced by ``new``."""
    text = BASE
    for old, new in changes:
        if text.count(old) != 1:
            raise ValueError(f"{old!r} occurs {text.count(old)} times in the fleet")
        text = text.replace(old, new)
    return text


def after(anchor: str, added: str) -> str:
    """BASE with ``added`` inserted right after the line(s) ``anchor``."""
    return edit((anchor, anchor + added))


@dataclass(frozen=True)
class Bad:
    id: str
    text: str
    field: str
    fragment: str
    line: int | None = None  # None: the line carrying the `# <-` marker
    count: int = 1  # how many problems the file has in all

    def expected_line(self) -> int:
        if self.line is not None:
            return self.line
        marked = [n for n, text in enumerate(self.text.splitlines(), 1) if MARK in text]
        assert len(marked) == 1, f"{self.id}: mark exactly one line with {MARK!r}"
        return marked[0]


CASES = [
    # --- the YAML itself ---
    Bad("tab-indent", edit(("    tier: core\n", f"\ttier: core  {MARK}\n")),
        "(syntax)", "never tabs"),
    Bad("unclosed-bracket",
        edit(("[core-1]\n    runtimes: [runc, kata, apptainer]",
              f"[core-1\n    runtimes: [runc, kata, apptainer]  {MARK}")),
        "(syntax)", "expected ',' or ']', but got ':' (while parsing a flow sequence that "
        "starts on line 43)"),
    Bad("unclosed-quote-at-end", BASE + f'description: "never closed  {MARK}\n',
        "(syntax)", "end of stream"),
    Bad("empty-file", "", "(document)", "the file is empty", line=1),
    Bad("comments-only", "# nothing yet\n\n", "(document)", "the file is empty", line=1),
    Bad("top-level-list", "- name: t\n- sites: []\n", "(document)",
        "the top level must be a mapping", line=1),
    Bad("duplicate-key", edit(("    site: edge\n    address: 10.1.2.12",
                               f"    site: edge\n    site: core  {MARK}\n    address: 10.1.2.12")),
        "boxes[2].site", "duplicate key"),
    # --- types ---
    Bad("port-not-a-number", edit(("ssh: {port: 2222}", f"ssh: {{port: abc}}  {MARK}")),
        "boxes[0].ssh.port", "must be a whole number (got 'abc')"),
    Bad("port-out-of-range", edit(("ssh: {port: 2222}", f"ssh: {{port: 70000}}  {MARK}")),
        "boxes[0].ssh.port", "less than or equal to 65535"),
    Bad("vni-is-a-word", edit(("vni: 100", f"vni: hundred  {MARK}")),
        "overlays[0].vni", "must be a whole number (got 'hundred')"),
    Bad("vni-is-quoted", edit(("vni: 100", f'vni: "100"  {MARK}')),
        "overlays[0].vni", "not text: remove the quotes"),
    Bad("vni-is-a-boolean", edit(("vni: 100", f"vni: yes  {MARK}")),
        "overlays[0].vni", "must be a whole number (got True)"),
    Bad("address-not-an-ip", edit(("address: 10.1.2.12", f"address: box-two  {MARK}")),
        "boxes[2].address", "not a valid IPv4 address; write it like 10.1.2.3"),
    Bad("address-is-a-number", edit(("address: 10.1.2.12", f"address: 12  {MARK}")),
        "boxes[2].address", "written as text like 10.1.2.3, not a number"),
    Bad("cidr-with-host-bits", edit(("cidr: 10.3.0.0/16, mtu: 9000, bridge: br-data}",
                                     f"cidr: 10.3.0.1/16, mtu: 9000, bridge: br-data}}  {MARK}")),
        "planes[1].cidr", "no bits set after the prefix"),
    Bad("interface-prefix-too-long", edit(("10.3.2.11/24}", f"10.3.2.11/33}}  {MARK}")),
        "boxes[1].interfaces.D.address", "address with prefix; write it like 10.1.2.3/24"),
    Bad("name-is-a-number", edit(("  - name: end-1\n", f"  - name: 12  {MARK}\n")),
        "boxes[3].name", "must be text; quote the value"),
    Bad("sha256-read-as-a-number",
        edit((SHA, "1" * 64 + f"  {MARK}")),
        "artifacts.files[0].sha256", "quote the value so YAML keeps it as text"),
    Bad("empty-value", edit(("    site: edge\n    address: 10.1.2.12",
                             f"    site:  {MARK}\n    address: 10.1.2.12")),
        "boxes[2].site", "must be text (the value is empty)"),
    Bad("runtimes-not-a-list", edit(("runtimes: [runc, kata, apptainer]",
                                     f"runtimes: runc  {MARK}")),
        "clusters[0].runtimes", "must be a list"),
    Bad("subnets-not-a-mapping", edit(("      M: {cidr: 10.1.2.0/24}\n",
                                       "      - 10.1.2.0/24\n"),
                                      ("  - name: edge\n    tier: edge\n    subnets:",
                                       f"  - name: edge\n    tier: edge\n    subnets:  {MARK}")),
        "sites[1].subnets", "must be a mapping (key: value) (got a list)"),
    # --- unknown and missing keys ---
    Bad("unknown-top-level-key", BASE + f"colour: blue  {MARK}\n",
        "colour", "unknown key 'colour'; valid keys here: artifacts, bootstrap, boxes"),
    Bad("unknown-nested-key", after(END, f"    meshh: x  {MARK}\n"),
        "clusters[2].meshh", "did you mean 'mesh'?"),
    Bad("unknown-key-in-flow-mapping",
        edit(("ssh: {port: 2222}", f"ssh: {{port: 2222, usr: admin}}  {MARK}")),
        "boxes[0].ssh.usr",
        "did you mean 'user'? valid keys here: host_key, key, known_hosts, port, user"),
    Bad("missing-required-field",
        edit(("  - name: edge-2\n    site: edge\n    address: 10.1.2.12\n",
              f"  - name: edge-2  {MARK}\n    site: edge\n")),
        "boxes[2].address", "required field is missing"),
    Bad("missing-top-level-field", edit(("name: t\n", f"description: no name  {MARK}\n")),
        "name", "required field is missing", line=1),
    # --- literals and formats ---
    Bad("bad-tier", edit(("    tier: end\n", f"    tier: far  {MARK}\n")),
        "sites[2].tier", "must be one of 'core', 'edge' or 'end' (got 'far')"),
    Bad("bad-runtime", edit(("runtimes: [runc, kata, apptainer]",
                             f"runtimes: [runc, gvisor]  {MARK}")),
        "clusters[0].runtimes[1]", "must be one of 'runc', 'kata' or 'apptainer'"),
    Bad("bad-box-name", edit(("  - name: edge-2\n", f"  - name: Edge_2  {MARK}\n")),
        "boxes[2].name", "not a valid name: 1-63 lower-case letters, digits and '-'"),
    Bad("interface-name-too-long",
        edit(("nic: eth1, address: 10.3.2.11/24}",
              f"nic: enp3s0f0-uplink1, address: 10.3.2.11/24}}  {MARK}")),
        "boxes[1].interfaces.D.nic", "not a valid interface name: at most 15"),
    Bad("bad-host-key", edit(("ssh: {port: 2222}", f"ssh: {{host_key: 'SHA256:abc'}}  {MARK}")),
        "boxes[0].ssh.host_key", "not a valid host-key fingerprint: 'SHA256:' and 43 base64"),
    Bad("bad-sha256", edit((SHA, SHA.upper() + f"  {MARK}")),
        "artifacts.files[0].sha256", "not a valid sha256 digest: 64 lower-case hex digits"),
    Bad("bad-kubernetes-version", after(END, f"    kubernetes_version: '1.3'  {MARK}\n"),
        "clusters[2].kubernetes_version", "not a valid Kubernetes version: a minor version"),
    # --- cross-checks: uniqueness ---
    Bad("duplicate-box-name", edit(("  - name: edge-2\n", f"  - name: edge-1  {MARK}\n"),
                                   ("workers: [edge-2]", "workers: []")),
        "boxes[2].name", "duplicate box name edge-1: already used at boxes[1].name"),
    Bad("duplicate-address", edit(("address: 10.1.2.12", f"address: 10.1.2.11  {MARK}")),
        "boxes[2].address", "duplicate address 10.1.2.11: already used at boxes[1].address"),
    Bad("address-is-a-gateway", edit(("address: 10.1.1.11", f"address: 10.1.1.1  {MARK}")),
        "boxes[0].address", "already used at sites[0].subnets.M.gateway"),
    Bad("duplicate-vni", edit(("    cidr: 10.250.0.0/24\n", "    cidr: 10.250.0.0/24\n"
                               f"  - {{name: ov2, vni: 100, plane: D, bridge: br-ov2}}  {MARK}\n")),
        "overlays[1].vni", "duplicate VNI 100: already used at overlays[0].vni"),
    # --- cross-checks: references ---
    Bad("unknown-site", edit(("    site: end\n", f"    site: nowhere  {MARK}\n")),
        "boxes[3].site", "unknown site 'nowhere'; valid: core, edge, end"),
    Bad("unknown-cluster-member", edit(("workers: [edge-2]", f"workers: [edge-9]  {MARK}")),
        "clusters[1].workers[0]", "unknown box 'edge-9'; valid: core-1, edge-1, edge-2, end-1"),
    Bad("box-in-two-clusters", edit(("workers: [edge-2]", f"workers: [edge-2, core-1]  {MARK}")),
        "clusters[1].workers[1]", "box core-1 is already a member of cluster core"),
    Bad("box-twice-in-a-cluster", edit(("workers: [edge-2]", f"workers: [edge-2, edge-1]  {MARK}")),
        "clusters[1].workers[1]", "box edge-1 is listed twice in this cluster"),
    Bad("unknown-plane-in-interfaces",
        edit(("    address: 10.1.2.12\n", "    address: 10.1.2.12\n    interfaces:\n"
              f"      X: {{nic: eth1, address: 10.3.2.12/24}}  {MARK}\n")),
        "boxes[2].interfaces.X", "unknown plane 'X'; valid: D, M"),
    Bad("unknown-plane-in-subnets", edit(("      M: {cidr: 10.1.2.0/24}",
                                          f"      Q: {{cidr: 10.1.2.0/24}}  {MARK}")),
        "sites[1].subnets.Q", "unknown plane 'Q'; valid: D, M"),
    Bad("unknown-overlay", edit(("{ov: 10.250.0.21/24}", f"{{ovx: 10.250.0.21/24}}  {MARK}")),
        "boxes[1].overlay_addresses.ovx", "unknown overlay 'ovx'; valid: ov"),
    Bad("unknown-underlay-plane", edit(("    plane: D\n", f"    plane: Z  {MARK}\n")),
        "overlays[0].plane", "unknown plane 'Z'; valid: D, M"),
    # --- cross-checks: planes, subnets and addresses ---
    Bad("overlapping-plane-cidrs",
        edit(("bridge: br-data}\n", "bridge: br-data}\n"
              f"  - {{name: C, purpose: control, cidr: 10.1.200.0/24}}  {MARK}\n")),
        "planes[2].cidr", "10.1.200.0/24 overlaps 10.1.0.0/16 of plane M"),
    Bad("overlapping-site-subnets",
        edit(("    tier: end\n", "    tier: end\n  - name: far\n    tier: edge\n    subnets:\n"
              f"      M: {{cidr: 10.1.1.0/25}}  {MARK}\n")),
        "sites[3].subnets.M.cidr", "10.1.1.0/25 overlaps 10.1.1.0/24 of site core"),
    Bad("subnet-outside-plane",
        edit(("    tier: end\n", "    tier: end\n    subnets:\n"
              f"      M: {{cidr: 10.9.0.0/24}}  {MARK}\n"),
             ("address: 10.1.9.11", "address: 10.9.0.11")),
        # The box moved with the subnet is outside the plane too: both are reported.
        "sites[2].subnets.M.cidr", "10.9.0.0/24 is outside plane M (10.1.0.0/16)", count=2),
    Bad("gateway-outside-subnet", edit(("gateway: 10.1.1.1}", f"gateway: 10.1.2.1}}  {MARK}")),
        "sites[0].subnets.M.gateway", "gateway 10.1.2.1 is outside 10.1.1.0/24"),
    Bad("address-outside-plane", edit(("address: 10.1.2.12", f"address: 10.2.2.12  {MARK}")),
        "boxes[2].address", "10.2.2.12 is outside plane M (10.1.0.0/16)"),
    Bad("address-outside-site-subnet", edit(("address: 10.1.2.12", f"address: 10.1.7.12  {MARK}")),
        "boxes[2].address", "10.1.7.12 is outside site edge's M subnet (10.1.2.0/24)"),
    Bad("interface-outside-plane", edit(("10.3.1.11/24}", f"10.4.1.11/24}}  {MARK}")),
        "boxes[0].interfaces.D.address", "10.4.1.11 is outside plane D (10.3.0.0/16)"),
    Bad("overlay-address-outside-overlay", edit(("{ov: 10.250.0.21/24}",
                                                 f"{{ov: 10.251.0.21/24}}  {MARK}")),
        "boxes[1].overlay_addresses.ov", "10.251.0.21 is outside overlay ov (10.250.0.0/24)"),
    Bad("management-interface-differs",
        edit(("      D: {nic: eth1, address: 10.3.1.11/24}",
              "      D: {nic: eth1, address: 10.3.1.11/24}\n"
              f"      M: {{nic: eno1, address: 10.1.1.99/24}}  {MARK}")),
        "boxes[0].interfaces.M.address", "differs from the management address 10.1.1.11"),
    Bad("two-management-planes",
        edit(("purpose: data, cidr: 10.3.0.0/16, mtu: 9000, bridge: br-data}",
              f"purpose: management, cidr: 10.3.0.0/16, mtu: 9000, bridge: br-data}}  {MARK}")),
        "planes[1].purpose", "plane M is already the management plane"),
    Bad("no-management-plane", edit(("purpose: management", "purpose: control"),
                                    ("planes:\n", f"planes:  {MARK}\n")),
        "planes", "no plane has purpose 'management'"),
    # --- cross-checks: overlays ---
    Bad("hub-topology-without-hub", edit(("    cidr: 10.250.0.0/24\n",
                                          "    cidr: 10.250.0.0/24\n    topology: hub\n"),
                                         ("  - name: ov\n", f"  - name: ov  {MARK}\n")),
        "overlays[0].hub", "topology 'hub' needs a hub box"),
    Bad("hub-with-mesh-topology", after("    plane: D\n", f"    hub: core-1  {MARK}\n"),
        "overlays[0].hub", "a hub is only valid with topology 'hub'"),
    Bad("overlay-mtu-too-big", after("    cidr: 10.250.0.0/24\n", f"    mtu: 8960  {MARK}\n"),
        "overlays[0].mtu", "use at most 8950"),
    Bad("overlay-bridge-is-a-plane-bridge",
        after("    cidr: 10.250.0.0/24\n", f"    bridge: br-data  {MARK}\n"),
        "overlays[0].bridge", "bridge br-data is already the bridge of a plane"),
    Bad("overlay-member-without-underlay",
        after("    address: 10.1.2.12\n",
              f"    overlay_addresses: {{ov: 10.250.0.22/24}}  {MARK}\n"),
        "boxes[2].overlay_addresses.ov", "has no interface on its underlay plane D"),
    # --- cross-checks: clusters, runtimes and tiers ---
    Bad("zero-control-planes", edit(("control_planes: [end-1]", f"control_planes: []  {MARK}")),
        "clusters[2].control_planes", "at least one control-plane box"),
    Bad("even-control-planes", edit(("control_planes: [edge-1]\n    workers: [edge-2]",
                                     f"control_planes: [edge-1, edge-2]  {MARK}")),
        "clusters[1].control_planes", "use an odd count (1, 3, 5)"),
    Bad("runc-missing", edit(("runtimes: [runc, kata, apptainer]",
                              f"runtimes: [kata, apptainer]  {MARK}")),
        "clusters[0].runtimes", "runc must stay enabled"),
    Bad("runtime-listed-twice", edit(("runtimes: [runc, kata, apptainer]",
                                      f"runtimes: [runc, kata, kata]  {MARK}")),
        "clusters[0].runtimes", "each runtime may be listed once"),
    Bad("kata-on-end-only-cluster", after(END, f"    runtimes: [runc, kata]  {MARK}\n"),
        "clusters[2].runtimes", "kata needs hardware virtualisation, which end-tier devices lack"),
    Bad("apptainer-without-core", edit(("    workers: [edge-2]\n", "    workers: [edge-2]\n"
                                        f"    runtimes: [runc, apptainer]  {MARK}\n")),
        "clusters[1].runtimes", "apptainer serves HPC/AI training, which runs in the core"),
    Bad("istio-on-end-only-cluster", edit(("mesh: linkerd", f"mesh: istio  {MARK}")),
        "clusters[2].mesh", "istio's control plane does not fit end-tier devices"),
    Bad("pod-cidr-overlaps-default-service-cidr",
        after(END, f"    pod_cidr: 10.96.0.0/16  {MARK}\n"),
        "clusters[2].pod_cidr", "10.96.0.0/16 overlaps this cluster's service_cidr 10.96.0.0/12"),
    Bad("service-cidr-overlaps-default-pod-cidr",
        after(END, f"    service_cidr: 10.244.0.0/20  {MARK}\n"),
        "clusters[2].service_cidr", "overlaps this cluster's pod_cidr 10.244.0.0/16"),
    Bad("pod-cidr-overlaps-a-plane",
        after(END, f"    pod_cidr: 10.3.0.0/16  {MARK}\n"),
        "clusters[2].pod_cidr", "10.3.0.0/16 overlaps plane D (10.3.0.0/16)"),
    Bad("pod-cidr-overlaps-an-overlay",
        after(END, f"    pod_cidr: 10.250.0.0/16  {MARK}\n"),
        "clusters[2].pod_cidr", "overlaps overlay ov (10.250.0.0/24)"),
    # --- cross-checks: Kubernetes versions and the skew policy ---
    Bad("unsupported-kubernetes-minor",
        after(END, f'    kubernetes_version: "1.32"  {MARK}\n'),
        "clusters[2].kubernetes_version", "Kubernetes 1.32 is not supported; use one of "
        "1.35, 1.36, 1.37"),
    Bad("kubernetes-1.36-on-debian-containerd",
        after(END, f'    kubernetes_version: "1.36"  {MARK}\n'),
        "clusters[2].kubernetes_version", "needs containerd 2 on every node (1.x runs up to "
        "Kubernetes 1.35) and bookworm ships 1.6.20; set containerd.version"),
    Bad("kubelet-newer-than-the-api-server",
        edit(("    site: edge\n    address: 10.1.2.12\n",
              f'    site: edge\n    address: 10.1.2.12\n    kubelet_version: "1.36"  {MARK}\n')),
        "boxes[2].kubelet_version", "kubelet 1.36 would be newer than the API server of edge "
             "(1.35); the skew policy forbids it"),
    Bad("kubelet-four-minors-behind",
        edit(("    site: edge\n    address: 10.1.2.12\n",
              f'    site: edge\n    address: 10.1.2.12\n    kubelet_version: "1.31"  {MARK}\n')),
        "boxes[2].kubelet_version", "kubelet 1.31 is 4 minors older than the API server of "
             "edge (1.35); at most 3 are allowed"),
    Bad("control-plane-kubelet-lags",
        edit(("    site: edge\n    address: 10.1.2.11\n",
              f'    site: edge\n    address: 10.1.2.11\n    kubelet_version: "1.34"  {MARK}\n')),
        "boxes[1].kubelet_version", "edge-1 is a control plane of edge: its kubelet runs the "
             "cluster's version 1.35"),
    Bad("containerd-version-not-2",
        BASE + f'containerd: {{version: "1.7.24"}}  {MARK}\n',
        "containerd.version", "a containerd 2 release, 2.N.N"),
    Bad("unknown-debian-release",
        edit(("    site: end\n    address: 10.1.9.11\n",
              f"    site: end\n    address: 10.1.9.11\n    os: buster  {MARK}\n")),
        "boxes[3].os", "'bookworm' or 'trixie'"),
    Bad("gpu-count-zero",
        edit(("    site: end\n    address: 10.1.9.11\n",
              "    site: end\n    address: 10.1.9.11\n"
              f"    accelerators: [{{vendor: nvidia, count: 0}}]  {MARK}\n")),
        "boxes[3].accelerators[0].count", "greater than or equal to 1"),
    # --- cross-checks: artifacts ---
    Bad("offline-without-bundle-dir",
        edit(("artifacts:\n", f"artifacts:  {MARK}\n  source: offline\n")),
        "artifacts.bundle_dir", "source 'offline' needs bundle_dir"),
    Bad("artifact-twice-for-one-arch",
        edit(("      role: kubernetes\n", "      role: kubernetes\n      arch: arm64\n"
              f"    - {{name: kubeadm, url: https://x, sha256: {SHA}, role: kubernetes,  {MARK}\n"
              "       arch: arm64}\n")),
        "artifacts.files[1].name", "duplicate artifact kubeadm (arm64)"),
    Bad("artifact-with-and-without-arch",
        edit(("      role: kubernetes\n", "      role: kubernetes\n"
              f"    - {{name: kubeadm, url: https://x, sha256: {SHA}, role: kubernetes,\n"
              f"       arch: arm64}}  {MARK}\n")),
        "artifacts.files[1].arch", "declare it either once without arch or once per "
        "architecture"),
]


def problems_of(text: str, path: Path) -> list[Problem]:
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InventoryError) as caught:
        load_fleet(path)
    return caught.value.problems


def test_the_base_fleet_is_valid(tmp_path: Path) -> None:
    path = tmp_path / "fleet.yaml"
    path.write_text(BASE, encoding="utf-8")
    fleet = load_fleet(path)
    assert [b.name for b in fleet.boxes] == ["core-1", "edge-1", "edge-2", "end-1"]


def test_there_are_enough_distinct_cases() -> None:
    assert len({case.id for case in CASES}) == len(CASES) >= 25
    assert len({case.text for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_input_is_reported_at_its_line(case: Bad, tmp_path: Path) -> None:
    path = tmp_path / "fleet.yaml"
    problems = problems_of(case.text, path)
    listing = "\n".join(map(str, problems))
    assert len(problems) == case.count, listing
    matching = [p for p in problems if p.field == case.field]
    assert matching, f"no problem at {case.field}:\n{listing}"
    problem = matching[0]
    assert problem.file == str(path)
    assert problem.line == case.expected_line(), listing
    assert case.fragment in problem.message, listing
    assert str(problem).startswith(f"{path}:{case.expected_line()}: {case.field}: ")


def test_all_field_errors_are_listed_at_once_in_line_order(tmp_path: Path) -> None:
    text = edit(("ssh: {port: 2222}", "ssh: {port: abc}"),
                ("    tier: end\n", "    tier: far\n"),
                ("vni: 100", "vni: -1"))
    problems = problems_of(text, tmp_path / "three.yaml")
    assert [(p.line, p.field) for p in problems] == [
        (15, "sites[2].tier"), (20, "boxes[0].ssh.port"), (38, "overlays[0].vni"),
    ]


def test_all_cross_check_problems_are_listed_at_once(tmp_path: Path) -> None:
    text = edit(("address: 10.1.2.12", "address: 10.1.2.11"),
                ("    site: end\n", "    site: nowhere\n"),
                ("control_planes: [end-1]", "control_planes: []"))
    problems = problems_of(text, tmp_path / "three.yaml")
    assert [(p.line, p.field) for p in problems] == [
        (32, "boxes[2].address"), (34, "boxes[3].site"), (50, "clusters[2].control_planes"),
    ]


def test_unreadable_file_names_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "absent.yaml"
    with pytest.raises(InventoryError) as caught:
        load_fleet(missing)
    [problem] = caught.value.problems
    assert problem.file == str(missing)
    assert "cannot read" in problem.message
