"""`dnabox kubeconfig -c CLUSTER [--merge]`: where a cluster's admin kubeconfig is, or merge it
into your own kubeconfig. Never prints its content."""

from __future__ import annotations

from typing import Annotated

import typer

from dnabox.cli.common import (
    DEFAULT_INVENTORY,
    InventoryOption,
    JsonOption,
    command,
    fleet_from,
    locations,
    print_json,
    stdout,
)


@command
def kubeconfig(
    ctx: typer.Context,
    cluster: Annotated[str, typer.Option("--cluster", "-c", help="The cluster.")],
    inventory: InventoryOption = DEFAULT_INVENTORY,
    merge: Annotated[bool, typer.Option(
        "--merge", help="Merge it into $KUBECONFIG (first entry) or ~/.kube/config as context "
                        "<fleet>-<cluster>.")] = False,
    json_output: JsonOption = False,
) -> None:
    """Print the path of a cluster's admin kubeconfig (the kubernetes role fetched it when
    the cluster formed: mode 0600, server set to the control plane's address).

    Exit 1 when there is none yet or it is readable by others. The content is never shown.

    Examples:
      export KUBECONFIG=$(dnabox kubeconfig -i fleet.yaml -c core)
      dnabox kubeconfig -i fleet.yaml -c core --merge && kubectl --context fleet-core get nodes
    """
    from dnabox.adapters.kubeconfig import check_private, merge_into, user_kubeconfig
    from dnabox.layers.stack_config import select_clusters, stack_name

    fleet = fleet_from(inventory)
    (chosen,) = select_clusters(fleet, cluster)
    path = locations(ctx).kubeconfig(fleet.name, chosen.name)
    check_private(path)
    target = None
    if merge:
        target = user_kubeconfig()
        merge_into(path, target, stack_name(fleet, chosen))
    if json_output:
        print_json({"cluster": chosen.name, "path": str(path),
                    "merged_into": str(target) if target else None})
    elif target is not None:
        stdout().print(f"merged context {stack_name(fleet, chosen)} into {target}",
                       markup=False, soft_wrap=True)
    else:
        typer.echo(str(path))
