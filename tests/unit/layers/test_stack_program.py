"""Run stacks/__main__.py for every cluster of the sample fleets under Pulumi mocks.

Every resource the program declares is captured with its inputs. Each Kubernetes object is
then validated strictly against the official schemas for every supported minor version (CRD
instances against their CRD's schema), and compared with what the pure builders return.
"""

from __future__ import annotations

import importlib
import json
import re
import runpy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pulumi
import pytest
import yaml
from pulumi.runtime.mocks import MockCallArgs, MockResourceArgs, Mocks, set_mocks
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from dnabox.inventory import load_fleet
from dnabox.layers import baseline, dna, gpus, mesh, networks, runtimes, stack_config
from dnabox.layers.manifests import SUPPORTED_KUBERNETES, Manifest, resource_name
from dnabox.plan.runtimes import RUNTIMES

ROOT = Path(__file__).resolve().parents[3]
PROGRAM = ROOT / "stacks" / "__main__.py"
SAMPLES = ("inventory/lab.yaml", "inventory/smartx-playground.yaml")
CHECKED_IN = "inventory/smartx-playground.yaml"
SECRET_SIG = "4dabf18193072939515e22adb298388d"
FAKE_TLS = {"privateKeyPem": "-----BEGIN EC PRIVATE KEY-----\nfake\n",
            "certPem": "-----BEGIN CERTIFICATE-----\nfake\n",
            "certRequestPem": "-----BEGIN CERTIFICATE REQUEST-----\nfake\n"}
config_module = importlib.import_module("pulumi.config")


@dataclass
class Registered:
    typ: str
    name: str
    inputs: dict[str, Any]  # secrets unwrapped
    raw: dict[str, Any]  # as sent, secrets still marked
    custom: bool
    provider: str


class CaptureMocks(Mocks):
    def __init__(self) -> None:
        self.resources: list[Registered] = []

    def new_resource(self, args: MockResourceArgs) -> tuple[str, dict[str, Any]]:
        self.resources.append(Registered(args.typ, args.name, unwrap(args.inputs), args.inputs,
                                         bool(args.custom), args.provider or ""))
        state = dict(args.inputs)
        if args.typ.startswith("tls:"):
            state.update(FAKE_TLS)
        return f"{args.name}-id", state

    def call(self, args: MockCallArgs) -> dict[str, Any]:
        return {}


def unwrap(value: Any) -> Any:
    if isinstance(value, dict):
        if value.get(SECRET_SIG) is not None and "value" in value:
            return unwrap(value["value"])
        return {k: unwrap(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unwrap(v) for v in value]
    return value


@dataclass
class ProgramRun:
    resources: list[Registered]
    exports: dict[str, Any]
    config_reads: list[str] = field(default_factory=list)

    def kubernetes_objects(self) -> list[Registered]:
        return [r for r in self.resources if r.custom and r.typ.startswith("kubernetes:")
                and not r.typ.startswith("kubernetes:helm.sh/")]

    def of_type(self, typ: str) -> list[Registered]:
        return [r for r in self.resources if r.typ == typ]


def run_program(config: dict[str, str]) -> ProgramRun:
    mocks = CaptureMocks()
    cluster = config.get(stack_config.qualified(stack_config.CLUSTER_KEY), "stack")
    set_mocks(mocks, project="dnabox", stack=cluster, preview=False)
    pulumi.runtime.set_all_config(config, [stack_config.qualified(stack_config.KUBECONFIG_KEY)])
    run = ProgramRun(mocks.resources, {})
    original = config_module.get_config

    def recording_get_config(key: str) -> Any:
        run.config_reads.append(key)
        return original(key)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(config_module, "get_config", recording_get_config)
        patch.setattr(pulumi, "export", run.exports.__setitem__)
        _sync_await(run_pulumi_func(
            lambda: runpy.run_path(str(PROGRAM), run_name="__main__")))
    return run


def stack_config_for(inventory: str, cluster: str) -> dict[str, str]:
    """The checked-in file where there is one (the example fleet), else what is generated."""
    checked_in = ROOT / f"Pulumi.smartx-playground-{cluster}.yaml"
    if inventory == CHECKED_IN:
        loaded: dict[str, str] = yaml.safe_load(checked_in.read_text())["config"]
        return loaded
    fleet = load_fleet(ROOT / inventory)
    (c,) = stack_config.select_clusters(fleet, cluster)
    return stack_config.stack_config(fleet, c, inventory)


STACKS = [(path, c.name) for path in SAMPLES for c in load_fleet(ROOT / path).clusters]
_runs: dict[tuple[str, str], ProgramRun] = {}


@pytest.fixture(params=STACKS, ids=lambda s: f"{Path(s[0]).stem}/{s[1]}")
def stack_run(request: pytest.FixtureRequest) -> tuple[str, str, ProgramRun]:
    # One program run per stack, shared by the tests that inspect it.
    key = request.param
    if key not in _runs:
        _runs[key] = run_program(stack_config_for(*key))
    return (*key, _runs[key])


def builder_manifests(inventory: str, cluster_name: str) -> list[Manifest]:
    fleet = load_fleet(ROOT / inventory)
    (cluster,) = stack_config.select_clusters(fleet, cluster_name)
    plan = mesh.mesh_plan(fleet, cluster)
    mesh_ns = mesh.mesh_namespace(plan)
    gpu = gpus.gpu_plan(fleet, cluster)
    return [
        *(gpu.manifests if gpu else ()),
        *baseline.namespaces(fleet, cluster, plan.namespace_labels, plan.namespace_annotations),
        *baseline.node_patches(fleet, cluster),
        *runtimes.runtime_classes(fleet, cluster),
        *networks.multus_manifests(cluster.distribution),
        *networks.ovs_cni_manifests(cluster.distribution),
        networks.nad_crd(),
        *networks.network_attachments(fleet, cluster),
        *([mesh_ns] if mesh_ns else []),
        *plan.policies,
        *dna.dna_plan(fleet, cluster).manifests,
    ]


# --- strict schema validation -------------------------------------------------------------

def validate_official(obj: dict[str, Any]) -> None:
    for version in SUPPORTED_KUBERNETES:
        kubernetes_validate.validate(obj, version, strict=True)


def validate_metadata(metadata: dict[str, Any]) -> None:
    # CRDs have no official schema, but their ObjectMeta is the official one.
    validate_official({"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata})


DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
LABEL_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")


def check_names(metadata: dict[str, Any]) -> None:
    """What the API server checks and the JSON schemas cannot: names, label keys/values."""
    name = metadata["name"]
    assert len(name) <= 253 and DNS_SUBDOMAIN.match(name), name
    if "namespace" in metadata:
        assert len(metadata["namespace"]) <= 63 and DNS_LABEL.match(metadata["namespace"])
    for key in [*metadata.get("labels", {}), *metadata.get("annotations", {})]:
        prefix, _, short = key.rpartition("/")
        assert not prefix or (len(prefix) <= 253 and DNS_SUBDOMAIN.match(prefix)), key
        assert len(short) <= 63 and LABEL_NAME.match(short), key
    for value in metadata.get("labels", {}).values():
        assert value == "" or (len(value) <= 63 and LABEL_NAME.match(value)), value


def validate_custom(obj: dict[str, Any]) -> None:
    validate_metadata(obj["metadata"])
    assert set(obj) == {"apiVersion", "kind", "metadata", "spec"}
    if obj["kind"] == "NetworkAttachmentDefinition":
        assert obj["apiVersion"] == networks.NAD_API_VERSION
        schema = networks.nad_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
        jsonschema.validate(obj, schema)
        assert set(obj["spec"]) == {"config"}
        config = json.loads(obj["spec"]["config"])
        assert config["type"] == "ovs" and config["cniVersion"] == "0.4.0"
        assert isinstance(config["bridge"], str) and isinstance(config["mtu"], int)
        assert set(config) <= {"cniVersion", "type", "bridge", "vlan", "mtu"}
        assert obj["metadata"]["annotations"][networks.RESOURCE_NAME_ANNOTATION] == \
            networks.OVS_RESOURCE_PREFIX + config["bridge"]
    elif obj["kind"] == "PeerAuthentication":
        assert obj["apiVersion"] == "security.istio.io/v1"
        assert obj["spec"] == {"mtls": {"mode": "STRICT"}}
    else:
        pytest.fail(f"no schema check for custom kind {obj['kind']}: add one")


def has_official_schema(obj: dict[str, Any]) -> bool:
    try:
        validate_official(obj)
    except kubernetes_validate.SchemaNotFoundError:
        return False
    return True


# --- the tests ----------------------------------------------------------------------------

def test_every_kubernetes_object_is_valid_for_every_supported_version(
    stack_run: tuple[str, str, ProgramRun],
) -> None:
    _, _, run = stack_run
    objects = run.kubernetes_objects()
    assert len(objects) > 15
    for registered in objects:
        obj = registered.inputs
        check_names(obj["metadata"])
        if not has_official_schema(obj):  # validates strictly when a schema exists
            validate_custom(obj)


def test_program_declares_exactly_the_builder_manifests(
    stack_run: tuple[str, str, ProgramRun],
) -> None:
    inventory, cluster, run = stack_run
    declared = {r.name: r.inputs for r in run.kubernetes_objects()}
    built = {resource_name(m): m for m in builder_manifests(inventory, cluster)}
    assert declared == built


def test_every_kubernetes_resource_goes_through_the_stack_provider(
    stack_run: tuple[str, str, ProgramRun],
) -> None:
    _, cluster, run = stack_run
    (provider,) = run.of_type("pulumi:providers:kubernetes")
    # The kubeconfig path is a secret end to end, and absolute once resolved.
    assert provider.raw["kubeconfig"][SECRET_SIG]
    assert Path(provider.inputs["kubeconfig"]).is_absolute()
    expected = (f"urn:pulumi:{cluster}::dnabox::pulumi:pulumi:Stack$pulumi:providers:kubernetes"
                "::kubernetes"
                "::kubernetes-id")
    k8s = [r for r in run.resources if r.custom and r.typ.startswith("kubernetes:")]
    # Never the default provider: it would act on whatever cluster ~/.kube/config names.
    assert {r.provider for r in k8s} == {expected}


def test_components_group_the_layers(stack_run: tuple[str, str, ProgramRun]) -> None:
    inventory, cluster_name, run = stack_run
    fleet = load_fleet(ROOT / inventory)
    (cluster,) = stack_config.select_clusters(fleet, cluster_name)
    components = sorted(r.typ for r in run.resources if not r.custom)
    gpu = ["dnabox:layers:Gpus"] if gpus.gpu_plan(fleet, cluster) else []
    assert components == ["dnabox:layers:Dna", *gpu, "dnabox:layers:Networks",
                          "dnabox:layers:Runtimes", "dnabox:layers:ServiceMesh",
                          "dnabox:layers:TierBaseline"]


def test_runtime_class_handlers_match_the_containerd_table(
    stack_run: tuple[str, str, ProgramRun],
) -> None:
    _, cluster, run = stack_run
    classes = run.of_type("kubernetes:node.k8s.io/v1:RuntimeClass")
    assert classes
    for rc in classes:
        assert rc.inputs["handler"] == RUNTIMES[rc.inputs["metadata"]["name"]].handler
    assert run.exports["cluster"] == cluster
    assert run.exports["runtimeClasses"] == {
        rc.inputs["metadata"]["name"]: rc.inputs["handler"] for rc in classes}


def test_helm_releases_are_pinned_and_land_in_a_declared_namespace(
    stack_run: tuple[str, str, ProgramRun],
) -> None:
    inventory, cluster_name, run = stack_run
    fleet = load_fleet(ROOT / inventory)
    (cluster,) = stack_config.select_clusters(fleet, cluster_name)
    plan = mesh.mesh_plan(fleet, cluster)
    releases = {r.inputs["name"]: r.inputs for r in run.of_type("kubernetes:helm.sh/v3:Release")}
    gpu = gpus.gpu_plan(fleet, cluster)
    assert set(releases) == {c.release for c in (*plan.charts, *(gpu.charts if gpu else ()))}
    namespaces = {r.inputs["metadata"]["name"]
                  for r in run.of_type("kubernetes:core/v1:Namespace")}
    for release in releases.values():
        assert release["version"] and release["repositoryOpts"]["repo"].startswith("https://")
        assert release["namespace"] in namespaces
        assert release["atomic"] is True
    if plan.mode == "linkerd":
        values = releases["linkerd-control-plane"]["values"]
        assert values["identityTrustAnchorsPEM"].startswith("-----BEGIN CERTIFICATE-----")
        assert values["identity"]["issuer"]["tls"]["keyPEM"].startswith("-----BEGIN EC")
        # The issuer key is secret all the way into the release inputs.
        raw = next(r.raw for r in run.of_type("kubernetes:helm.sh/v3:Release")
                   if r.name == "linkerd-control-plane")
        assert SECRET_SIG in json.dumps(raw["values"])


def test_program_reads_exactly_the_generated_config_keys(
    stack_run: tuple[str, str, ProgramRun],
) -> None:
    inventory, cluster, run = stack_run
    read = {key for key in run.config_reads if key.startswith(f"{stack_config.NAMESPACE}:")}
    assert read == set(stack_config_for(inventory, cluster))


@pytest.mark.parametrize("missing", stack_config.KEYS)
def test_each_config_key_is_required(missing: str) -> None:
    config = stack_config_for(CHECKED_IN, "core")
    del config[stack_config.qualified(missing)]
    with pytest.raises(pulumi.ConfigMissingError):
        run_program(config)


def test_unsupported_kubernetes_version_is_refused(tmp_path: Path) -> None:
    source = (ROOT / "inventory" / "lab.yaml").read_text()
    changed = source.replace("  - name: core\n    distribution: kubeadm\n",
                             '  - name: core\n    distribution: kubeadm\n'
                             '    kubernetes_version: "1.27"\n', 1)
    assert changed != source
    inventory = tmp_path / "old.yaml"
    inventory.write_text(changed)
    config = {"dnabox:inventory": str(inventory), "dnabox:cluster": "core",
              "dnabox:kubeconfig": "k.yaml"}
    with pytest.raises(Exception, match=r"Kubernetes 1\.27"):
        run_program(config)


def test_strict_validation_rejects_an_unknown_field() -> None:
    # Guards the guard: a typo in a builder must fail the schema test above.
    fleet = load_fleet(ROOT / CHECKED_IN)
    rc = runtimes.runtime_classes(fleet, fleet.clusters[0])[0]
    validate_official(rc)
    with pytest.raises(kubernetes_validate.ValidationError):
        validate_official({**rc, "scheduling": {"nodeSelectors": {"a": "b"}}})
    nad = networks.network_attachments(fleet, fleet.clusters[0])[0]
    with pytest.raises(kubernetes_validate.ValidationError):
        validate_metadata({**nad["metadata"], "lables": {"a": "b"}})
    check_names(nad["metadata"])
    with pytest.raises(AssertionError):
        check_names({**nad["metadata"], "labels": {"bad label": "x"}})
    with pytest.raises(AssertionError):
        check_names({**nad["metadata"], "name": "Br_Data"})


def test_supported_versions_cover_three_minors_and_the_samples() -> None:
    assert len(SUPPORTED_KUBERNETES) >= 3
    for path in SAMPLES:
        for cluster in load_fleet(ROOT / path).clusters:
            assert cluster.kubernetes_version in SUPPORTED_KUBERNETES
