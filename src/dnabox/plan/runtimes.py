"""Container runtimes: the one place their containerd handler names are defined.

The containerd config the bootstrap renders and the RuntimeClasses the Pulumi stacks
create both read these, so ``RuntimeClass.handler`` always names a configured runtime
(peers' users hit pods silently running on runc when the two drift apart).
"""

from __future__ import annotations

from dataclasses import dataclass

from dnabox.inventory.model import Box, Fleet


@dataclass(frozen=True)
class RuntimeSpec:
    name: str
    # The containerd runtime table name == RuntimeClass.handler.
    handler: str
    runtime_type: str
    # OCI binary for runc-v2 shims; empty means the shim's default.
    binary_name: str
    # Pod overhead the RuntimeClass declares (Kata runs each pod in a VM).
    overhead_cpu: str
    overhead_memory: str
    # Node label that marks boxes with this runtime installed.
    node_label: str
    # The Ansible role that installs it (runc comes with container_runtime).
    role: str


RUNTIMES: dict[str, RuntimeSpec] = {
    "runc": RuntimeSpec("runc", "runc", "io.containerd.runc.v2", "", "", "",
                        "dnabox.io/runtime-runc", "container_runtime"),
    "kata": RuntimeSpec("kata", "kata", "io.containerd.kata.v2", "", "250m", "160Mi",
                        "dnabox.io/runtime-kata", "kata"),
    # Apptainer has no maintained containerd shim: its OCI mode runs through crun.
    "apptainer": RuntimeSpec("apptainer", "apptainer", "io.containerd.runc.v2",
                             "/usr/bin/crun", "", "", "dnabox.io/runtime-apptainer",
                             "apptainer"),
    # Boxes with NVIDIA GPUs (never chosen in `runtimes`: declared accelerators bring it).
    # The toolkit's runtime injects the GPUs; CDI specs name them.
    "nvidia": RuntimeSpec("nvidia", "nvidia", "io.containerd.runc.v2",
                          "/usr/bin/nvidia-container-runtime", "", "",
                          "dnabox.io/runtime-nvidia", "container_runtime"),
}
# Runtimes a box gets from its hardware, not from its cluster's `runtimes` list.
HARDWARE_RUNTIMES = ("nvidia",)


def runtimes_for(fleet: Fleet, box: Box) -> list[RuntimeSpec]:
    """Runtimes installed on ``box``: its cluster's, minus those its tier cannot host."""
    cluster = fleet.cluster_of(box.name)
    names = cluster.runtimes if cluster else ["runc"]
    tier = fleet.tier_of(box)
    specs = [RUNTIMES[n] for n in names if runtime_fits_tier(n, tier)]
    if any(a.vendor == "nvidia" for a in box.accelerators):
        specs.append(RUNTIMES["nvidia"])
    return specs


def runtime_fits_tier(name: str, tier: str) -> bool:
    # End devices lack hardware virtualisation (no Kata) and are not HPC nodes (no Apptainer).
    return not (tier == "end" and name in {"kata", "apptainer"})
