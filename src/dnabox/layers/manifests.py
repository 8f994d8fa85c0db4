"""Plain-dict Kubernetes manifests: the shared vocabulary of the layer builders.

Builders return ordinary dicts shaped exactly like the objects the API server receives, so
they can be validated against the official schemas and diffed without Pulumi. The Pulumi
components only hand these dicts to typed resources.
"""

from __future__ import annotations

import re
from typing import Any

from dnabox.inventory.platforms import KUBERNETES_MINORS

Manifest = dict[str, Any]

# Kubernetes minor versions the layers are written and schema-checked against: the fleet's
# supported minors (dnabox.inventory.platforms). A cluster asking for another one is refused
# by validation, and again before anything is applied (see ``check_kubernetes_version``).
SUPPORTED_KUBERNETES = KUBERNETES_MINORS

MANAGED_BY = {"app.kubernetes.io/managed-by": "dnabox"}
SYSTEM_NAMESPACE = "dnabox-system"


def meta(
    name: str,
    namespace: str | None = None,
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    """ObjectMeta with dnabox's managed-by label on every object it creates."""
    metadata: dict[str, Any] = {"name": name, "labels": {**MANAGED_BY, **(labels or {})}}
    if namespace is not None:
        metadata["namespace"] = namespace
    if annotations:
        metadata["annotations"] = dict(annotations)
    return metadata


def dns_label(text: str) -> str:
    """``text`` as a DNS-1123 label (object names): lower case, [a-z0-9-], at most 63."""
    label = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")
    return label[:63].rstrip("-") or "x"


def resource_name(manifest: Manifest) -> str:
    """A stack-unique Pulumi resource name: kind, namespace and object name."""
    metadata = manifest["metadata"]
    parts = [manifest["kind"].lower(), metadata.get("namespace", ""), metadata["name"]]
    return "-".join(part for part in parts if part)
