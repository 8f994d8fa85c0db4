"""Generate docs/runbooks/<name>.md from the runbook catalogue and playbooks.

Run ``python -m dnabox.provision.runbook_docs docs/runbooks``; a unit test keeps the
checked-in pages equal to this output, so the docs cannot drift from the code.
"""

from __future__ import annotations

import sys
from pathlib import Path

from dnabox.locations import Locations
from dnabox.provision.runbooks import ROLE_CHECKS, RUNBOOKS, RunbookSpec

EXAMPLES: dict[str, list[str]] = {
    "add_box": ["dnabox runbook run add_box -i inventory/lab.yaml --box edge-a-2"],
    "replace_box": ["ssh-keyscan -t ed25519 NEW_ADDRESS  # verify out of band, then record it",
                    "dnabox runbook run replace_box -i fleet.yaml --box edge-kaist-2"],
    "drain": ["dnabox runbook run drain -i fleet.yaml --box edge-kaist-2"],
    "undrain": ["dnabox runbook run undrain -i fleet.yaml --box edge-kaist-2"],
    "rolling_upgrade": ["dnabox runbook run rolling_upgrade -i fleet.yaml "
                        "--role container_runtime --max-unavailable 1",
                        "dnabox runbook run rolling_upgrade -i fleet.yaml "
                        "--role container_runtime --resume   # after fixing a failed batch"],
    "k8s_upgrade": ["# first: the kubeadm/kubelet/kubectl (or k3s) artifacts point at the new "
                    "release",
                    "dnabox runbook run k8s_upgrade -i fleet.yaml --to 1.37 --cluster core "
                    "--max-unavailable 2 --drain-timeout 600s",
                    "dnabox runbook run k8s_upgrade -i fleet.yaml --to 1.37 --cluster core "
                    "--resume   # after fixing a failed step"],
    "replace_control_plane": ["# first: core-gist-4 replaces core-gist-2 in the cluster's "
                              "control_planes",
                              "dnabox runbook run replace_control_plane -i fleet.yaml "
                              "--cluster core --old core-gist-2 --box core-gist-4"],
    "collect_diagnostics": ["dnabox runbook run collect_diagnostics -i fleet.yaml "
                            "--site kaist-edge --dest ./diagnostics"],
}


def render(spec: RunbookSpec, locations: Locations) -> str:
    lines = [f"# Runbook `{spec.name}`", "", f"{spec.summary}.", "", spec.details, "",
             "## Run it", "", "```bash", *EXAMPLES.get(spec.name, []), "```", "",
             "Targets: `--box`, `--site`, `--tier` (repeatable; all boxes when none is given). "
             "`--json` prints the events as JSON lines and a summary object.", ""]
    if spec.needs_box:
        lines += ["It needs `--box`: it never runs on a whole fleet by default.", ""]
    if spec.options:
        flags = ", ".join(f"`--{o.replace('_', '-')}`" for o in spec.options)
        lines += [f"Options: {flags} (the options of other runbooks are refused).", ""]
    if spec.name == "rolling_upgrade":
        lines += ["## Health checks between batches", "", "| role | check |", "| --- | --- |"]
        lines += [f"| {role} | `{check}` |" for role, check in ROLE_CHECKS.items()]
        lines.append("")
    if spec.playbook:
        path = locations.runbooks / spec.playbook
        lines += [f"## Playbook `playbooks/runbooks/{spec.playbook}`", "", "```yaml",
                  path.read_text(encoding="utf-8").rstrip(), "```", ""]
    else:
        lines += ["## How it works", "",
                  "No playbook of its own: it drives `dnabox up` (fingerprints decide what "
                  "runs where), so it is journaled, locked and parallel like `dnabox up`.", ""]
    return "\n".join(lines)


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    locations = Locations.discover()
    for spec in RUNBOOKS.values():
        (out / f"{spec.name}.md").write_text(render(spec, locations), encoding="utf-8")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/runbooks"))
