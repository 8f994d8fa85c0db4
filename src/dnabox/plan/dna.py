"""The D-N-A topology: one source of truth for NATS servers, streams and services.

Derived from the fleet's ``dna:`` section. A NATS JetStream hub (domain ``hub``, clustered
when the lake's site has 3+ boxes) runs on the lake's core site; one leaf node per edge site
that keeps a pond or serves a model runs on the site's first box, in a JetStream domain
named after the site, with a leafnode remote to the hub. End devices and the site's own
producers publish to their pond as clients of their leaf. All of it listens on, and
connects to, D-N-A addresses (overlay, else data plane): never the management address.

The bootstrap role ``dna`` (config files, streams), the lab's service runner, the
``dnabox dna`` commands and the Pulumi ``dna`` layer all read this module.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from dnabox.inventory.dna_rules import dna_address, leaf_box, pond_site, producer_boxes, site_boxes
from dnabox.inventory.model import Fleet, Retention, bytes_of, seconds_of

HUB_DOMAIN = "hub"
CLIENT_PORT = 4222
LEAFNODE_PORT = 7422
CLUSTER_PORT = 6222
# Monitoring (varz/jsz) stays on loopback: the box's own probes read it.
MONITOR_PORT = 8222
INFERENCE_PORT = 8480
CATALOGUE_BUCKET = "dna_catalogue"
MODELS_BUCKET = "dna_models"
MODELS_META_BUCKET = "dna_models_meta"
MODELS_STREAM = f"OBJ_{MODELS_BUCKET}"
MODELS_META_STREAM = f"KV_{MODELS_META_BUCKET}"
# Retried publishes carry the sample id as Nats-Msg-Id; JetStream drops a repeat seen
# within this window.
DUPLICATE_WINDOW_S = 120
ADMIN_USER = "dnabox"
# On the box: the secrets include of nats-server, client passwords, JetStream's store.
SECRETS_DIR = "/etc/dnabox/dna"
SECRETS_FILE = f"{SECRETS_DIR}/secrets.conf"
STORE_DIR = "/var/lib/dnabox/nats"
NANOS = 1_000_000_000

StreamKind = Literal["pond", "lake", "kv", "object"]


def stream_suffix(dataset: str) -> str:
    return dataset.upper().replace("-", "_")


def pond_stream(dataset: str) -> str:
    return f"POND_{stream_suffix(dataset)}"


def lake_stream(dataset: str) -> str:
    return f"LAKE_{stream_suffix(dataset)}"


def sample_subject(dataset: str, pond: str, box: str) -> str:
    """Where ``box`` publishes samples of ``dataset`` kept in ``pond`` site's pond."""
    return f"dna.{dataset}.{pond}.{box}"


def api_prefix(domain: str) -> str:
    return f"$JS.{domain}.API"


def lake_deliver_prefix(site: str) -> str:
    """Where the lake's sources of ``site``'s ponds deliver at the hub (JetStream appends
    ``.S.<id>``): per site, so the hub can let each edge leaf publish its own samples into
    the lake and nothing else (the default ``$JS.S.<id>`` is one namespace for every site)."""
    return f"dna-lake.{site}"


def registry_deliver_prefix(site: str) -> str:
    """Where ``site``'s registry copy receives the hub's registry: per site, so the hub
    sends an edge leaf its own copy's deliveries only."""
    return f"dna-registry.{site}"


def inbox_prefix(site: str) -> str:
    """The reply subjects of ``site``'s inference servers (instead of ``_INBOX``): their
    reads of the hub's registry are answered across the leaf link, and the hub lets an edge
    leaf receive its own site's replies only."""
    return f"dna-inbox.{site}"


def hub_registry_reads() -> tuple[str, ...]:
    """Message gets of the hub's registry streams: what an inference server asks the hub
    while its site's copy lags (nothing else of the hub's JetStream API)."""
    return tuple(f"{api_prefix(HUB_DOMAIN)}.STREAM.MSG.GET.{stream}"
                 for stream in (MODELS_STREAM, MODELS_META_STREAM))


def admin_credential(domain: str) -> str:
    """The name of the admin's password for the servers of ``domain``. The admin is user
    ``dnabox`` on every server, with a password per JetStream domain: an edge box holds its
    own server's admin login, never the hub's or another edge's."""
    return f"{ADMIN_USER}@{domain}"


def user_of(site: str) -> str:
    return f"dna-{site}"


def password_variable(user: str) -> str:
    """The nats-server config variable (defined in the secrets include) holding a password."""
    return "DNA_PW_" + user.upper().replace("-", "_")


def password_file(user: str) -> str:
    """Where a client on the box reads its password (0600, never in a config file)."""
    return f"{SECRETS_DIR}/{user}.password"


@dataclass(frozen=True)
class Source:
    """A stream another stream sources or mirrors, possibly in another JetStream domain."""

    stream: str
    domain: str
    # Prefix of the subject the source's messages arrive on ("": JetStream's $JS.S).
    deliver: str = ""

    def api(self) -> dict[str, Any]:
        return {"name": self.stream,
                "external": {"api": api_prefix(self.domain), "deliver": self.deliver}}


@dataclass(frozen=True)
class Stream:
    """A JetStream stream as the JetStream API's StreamConfig wants it."""

    name: str
    domain: str
    kind: StreamKind
    subjects: tuple[str, ...] = ()
    max_bytes: int = -1
    max_age_s: int = 0
    sources: tuple[Source, ...] = ()
    replicas: int = 1
    dataset: str = ""
    site: str = ""

    def api_config(self) -> dict[str, Any]:
        config: dict[str, Any] = {
            "name": self.name, "retention": "limits", "storage": "file",
            "num_replicas": self.replicas, "max_bytes": self.max_bytes,
            "max_age": self.max_age_s * NANOS, "max_msgs": -1, "max_msg_size": -1,
            "max_consumers": -1, "discard": "old",
            "duplicate_window": DUPLICATE_WINDOW_S * NANOS,
        }
        if self.subjects:
            config["subjects"] = list(self.subjects)
        if self.sources:
            config["sources"] = [s.api() for s in self.sources]
        if self.kind in ("kv", "object"):
            # What nats clients create for a KV bucket / an object store.
            config.update(allow_rollup_hdrs=True, allow_direct=True, discard="new",
                          max_msgs_per_subject=1 if self.kind == "kv" else -1)
            if self.kind == "kv":
                config["deny_delete"] = True
        return config


@dataclass(frozen=True)
class User:
    """A NATS user: per site (its boxes' clients), or the admin dnabox uses on the box."""

    name: str
    site: str
    # Subjects the user may publish/subscribe to; empty: everything.
    publish: tuple[str, ...] = ()
    subscribe: tuple[str, ...] = ()

    @property
    def variable(self) -> str:
        return password_variable(self.name)


@dataclass(frozen=True)
class NatsServer:
    """One nats-server: a hub member or an edge site's leaf."""

    box: str
    site: str
    role: Literal["hub", "leaf"]
    domain: str
    address: str
    users: tuple[User, ...]
    streams: tuple[Stream, ...]
    # hub: the other members' cluster routes and the edge sites' leafnode users. A leaf
    # user's publish/subscribe are what that edge's leaf may send into the hub and receive
    # from it (the leaf's point of view, as for a client): the hub tells the leaf and
    # enforces them on its side of the link, whatever the leaf's own config says.
    routes: tuple[str, ...] = ()
    leaf_users: tuple[User, ...] = ()
    # leaf: where the hub accepts leafnode connections, and the user it logs in as.
    hub_leafnode_urls: tuple[str, ...] = ()
    remote_user: str = ""
    # leaf: subjects never crossing the leafnode link directly (they arrive by sourcing).
    isolated_subjects: tuple[str, ...] = ()

    @property
    def client_url(self) -> str:
        return f"nats://{self.address}:{CLIENT_PORT}"

    @property
    def secret_variables(self) -> tuple[str, ...]:
        """Variables the box's secrets include defines (nats-server refuses unused ones)."""
        names = [u.variable for u in (*self.users, *self.leaf_users)]
        if self.role == "leaf":
            names.append("DNA_HUB_URLS")
        return tuple(dict.fromkeys(names))


@dataclass(frozen=True)
class Pond:
    site: str
    dataset: str
    box: str
    stream: str
    subjects: tuple[str, ...]
    retention: Retention


@dataclass(frozen=True)
class Publisher:
    """A producer box and where its samples go."""

    box: str
    site: str
    dataset: str
    pond: str
    subject: str
    server: str  # the leaf's box
    user: str


@dataclass(frozen=True)
class Service:
    """One instance of a reference X+AI service (programs: dnabox.dna.service)."""

    name: str
    role: Literal["collector", "trainer", "inference"]
    box: str
    site: str
    dataset: str
    nats_urls: tuple[str, ...]
    domain: str
    user: str
    model: str = ""
    subject: str = ""
    pond_stream: str = ""
    lake_stream: str = ""
    bind: str = ""
    retrain_every_samples: int = 0
    retrain_every_seconds: int = 0
    schema_version: int = 1

    @property
    def password_file(self) -> str:
        return password_file(self.user)


@dataclass(frozen=True)
class DnaTopology:
    hub: tuple[NatsServer, ...]
    leaves: tuple[NatsServer, ...]
    ponds: tuple[Pond, ...]
    lakes: tuple[Stream, ...]
    publishers: tuple[Publisher, ...]
    services: tuple[Service, ...]
    lake_site: str
    catalogue_bucket: str = CATALOGUE_BUCKET
    models_bucket: str = MODELS_BUCKET
    models_meta_bucket: str = MODELS_META_BUCKET
    # Which client passwords each box needs on disk (box -> users).
    clients: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def servers(self) -> tuple[NatsServer, ...]:
        return (*self.hub, *self.leaves)

    def server_on(self, box: str) -> NatsServer | None:
        return next((s for s in self.servers if s.box == box), None)

    def leaf_of(self, site: str) -> NatsServer | None:
        return next((s for s in self.leaves if s.site == site), None)

    @property
    def users(self) -> tuple[str, ...]:
        """Every NATS user of the fleet."""
        names = [u.name for s in self.servers for u in (*s.users, *s.leaf_users)]
        return tuple(sorted(set(names)))

    @property
    def credentials(self) -> tuple[str, ...]:
        """Every password the fleet needs (each kept in the fleet state dir): one per site
        user, and the admin's one per JetStream domain (``admin_credential``)."""
        names = {u for u in self.users if u != ADMIN_USER}
        names |= {admin_credential(s.domain) for s in self.servers}
        return tuple(sorted(names))

    def credential_of(self, user: str, box: str) -> str:
        """Which password ``user`` logs in with on ``box``'s server (or, for a client on a
        box without one, everywhere: site users have one password)."""
        server = self.server_on(box)
        if user == ADMIN_USER and server is not None:
            return admin_credential(server.domain)
        return user


def _registry_streams(domain: str, replicas: int, source: bool) -> tuple[Stream, ...]:
    """The model registry (object store + metadata KV): the hub's, or an edge copy (domain:
    the site) that sources the hub's so the edge keeps serving while cut off."""
    sources = ((lambda name: (Source(name, HUB_DOMAIN, registry_deliver_prefix(domain)),))
               if source else (lambda _name: ()))
    return (
        Stream(MODELS_STREAM, domain, "object",
               (f"$O.{MODELS_BUCKET}.C.>", f"$O.{MODELS_BUCKET}.M.>"), replicas=replicas,
               sources=sources(MODELS_STREAM)),
        Stream(MODELS_META_STREAM, domain, "kv", (f"$KV.{MODELS_META_BUCKET}.>",),
               replicas=replicas, sources=sources(MODELS_META_STREAM)),
    )


def build_topology(fleet: Fleet) -> DnaTopology | None:
    """The fleet's D-N-A topology; None when it declares no ``dna:`` section.

    Expects a fleet that passed validation (every reference resolves).
    """
    dna = fleet.dna
    if dna is None:
        return None
    hub_boxes = site_boxes(fleet, dna.lake.site)
    replicas = 3 if len(hub_boxes) >= 3 else 1
    address = {b.name: str(dna_address(fleet, b)) for b in fleet.boxes
               if dna_address(fleet, b) is not None}
    # Ponds: per dataset, the edge sites its producers publish to.
    publishers: list[Publisher] = []
    pond_sites: dict[str, list[str]] = {}
    for dataset in dna.datasets:
        for box in producer_boxes(fleet, dataset):
            pond = pond_site(fleet, box.site)
            leaf = leaf_box(fleet, pond) if pond else None
            if pond is None or leaf is None:
                continue
            if dataset.name not in pond_sites.setdefault(pond, []):
                pond_sites[pond].append(dataset.name)
            publishers.append(Publisher(box.name, box.site, dataset.name, pond,
                                        sample_subject(dataset.name, pond, box.name),
                                        leaf.name, user_of(box.site)))
    serving = [s for m in dna.models for s in m.serve_at]
    leaf_sites = [s.name for s in fleet.sites if s.name in pond_sites or s.name in serving]
    datasets = {d.name: d for d in dna.datasets}
    ponds = tuple(
        Pond(site, name, leaf.name, pond_stream(name), (f"dna.{name}.{site}.>",),
             datasets[name].retention)
        for site in leaf_sites for name in pond_sites.get(site, [])
        if (leaf := leaf_box(fleet, site)) is not None
    )
    lakes = tuple(
        Stream(lake_stream(d.name), HUB_DOMAIN, "lake",
               max_bytes=bytes_of(dna.lake.retention.max_bytes),
               max_age_s=seconds_of(dna.lake.retention.max_age),
               sources=tuple(Source(p.stream, p.site, lake_deliver_prefix(p.site))
                             for p in ponds if p.dataset == d.name),
               replicas=replicas, dataset=d.name)
        for d in dna.datasets
    )
    hub_streams = (
        *lakes,
        Stream(f"KV_{CATALOGUE_BUCKET}", HUB_DOMAIN, "kv", (f"$KV.{CATALOGUE_BUCKET}.>",),
               replicas=replicas),
        *_registry_streams(HUB_DOMAIN, replicas, source=False),
    )
    admin = User(ADMIN_USER, "")
    core_users = tuple(User(user_of(s.name), s.name) for s in fleet.sites if s.tier == "core")
    leaf_users = tuple(
        User(user_of(site), site, *_leaf_link(site, tuple(p.stream for p in ponds
                                                          if p.site == site), site in serving))
        for site in leaf_sites)
    hub = tuple(
        NatsServer(
            box.name, box.site, "hub", HUB_DOMAIN, address[box.name],
            users=(admin, *core_users), streams=hub_streams if i == 0 else (),
            routes=tuple(f"nats-route://{address[o.name]}:{CLUSTER_PORT}"
                         for o in hub_boxes if o is not box) if replicas > 1 else (),
            leaf_users=leaf_users)
        for i, box in enumerate(hub_boxes)
    )
    hub_urls = tuple(f"nats-leaf://{address[b.name]}:{LEAFNODE_PORT}" for b in hub_boxes)
    leaves = []
    for site in leaf_sites:
        leaf = leaf_box(fleet, site)
        if leaf is None:
            continue
        # Sites whose devices publish into this pond: the site itself and its end sites.
        local = sorted({p.site for p in publishers if p.pond == site} | {site})
        streams = tuple(Stream(p.stream, site, "pond", p.subjects,
                               bytes_of(p.retention.max_bytes), seconds_of(p.retention.max_age),
                               dataset=p.dataset, site=site)
                        for p in ponds if p.site == site)
        if site in serving:
            streams += _registry_streams(site, 1, source=True)
        users = (admin, *(User(user_of(s), s, publish=_client_publish(site),
                               subscribe=("_INBOX.>", f"{inbox_prefix(site)}.>"))
                          for s in local))
        leaves.append(NatsServer(
            leaf.name, site, "leaf", site, address[leaf.name], users=users, streams=streams,
            hub_leafnode_urls=hub_urls, remote_user=user_of(site),
            isolated_subjects=(f"$O.{MODELS_BUCKET}.>", f"$KV.{MODELS_META_BUCKET}.>")))
    services = _services(fleet, hub, tuple(leaves), tuple(publishers), ponds)
    clients: dict[str, list[str]] = {}
    for server in (*hub, *leaves):
        clients.setdefault(server.box, []).append(ADMIN_USER)
    for service in services:
        clients.setdefault(service.box, []).append(service.user)
    return DnaTopology(
        hub=hub, leaves=tuple(leaves), ponds=ponds, lakes=lakes,
        publishers=tuple(publishers), services=services, lake_site=dna.lake.site,
        clients={box: tuple(dict.fromkeys(users)) for box, users in clients.items()},
    )


def _leaf_link(site: str, ponds: tuple[str, ...], serves: bool
               ) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(publish, subscribe) of ``site``'s leaf at the hub: what its leaf may send into the
    hub and receive from it. Only what the lake's sourcing of its ponds and its registry
    copy's sourcing of the hub's registry need (the subjects nats-server 2.9 puts on the
    link for them), and the replies to the hub's own requests (``dnabox dna status``): never
    another site's pond or deliveries, the catalogue, the registry's subjects or any other
    JetStream API of the hub."""
    publish = ["_INBOX.>", "$JSC.R.>"]  # answers to the hub's requests to this site
    subscribe = [f"{api_prefix(site)}.>"]  # the hub asks this site's JetStream anything
    if ponds:
        # The lake's sources of this site's ponds: samples and heartbeats on their deliver
        # subjects, the lake's flow-control answers back.
        publish.append(f"{lake_deliver_prefix(site)}.>")
        subscribe += [f"$JS.FC.{pond}.>" for pond in ponds]
    if serves:
        # The registry copy sources the hub's registry: it creates a consumer per stream
        # (2.10 adds the consumer's name and filter to the subject), answers its flow control,
        # and receives its deliveries and the API's replies.
        for stream in (MODELS_STREAM, MODELS_META_STREAM):
            create = f"{api_prefix(HUB_DOMAIN)}.CONSUMER.CREATE.{stream}"
            publish += [create, f"{create}.>", f"$JS.FC.{stream}.>"]
        subscribe += [f"{registry_deliver_prefix(site)}.>", "$JSC.R.>"]
        # Its inference servers read the hub's registry while the copy lags: message gets
        # out, their answers back on the site's own inbox prefix.
        publish += hub_registry_reads()
        subscribe.append(f"{inbox_prefix(site)}.>")
    return tuple(publish), tuple(subscribe)


def _client_publish(site: str) -> tuple[str, ...]:
    """What a site's clients may publish at its leaf: its own pond's samples, the
    JetStream API requests and acknowledgements that reading the registry copy needs, and
    reads (message gets, nothing else) of the hub's registry, which an inference server
    makes while its site's copy lags."""
    return (f"dna.*.{site}.>", "$JS.API.>", "$JS.ACK.>", "$JS.FC.>", "_INBOX.>",
            *hub_registry_reads())


def _services(fleet: Fleet, hub: tuple[NatsServer, ...], leaves: tuple[NatsServer, ...],
              publishers: tuple[Publisher, ...], ponds: tuple[Pond, ...]) -> tuple[Service, ...]:
    assert fleet.dna is not None
    leaf_by_site = {leaf.site: leaf for leaf in leaves}
    services: list[Service] = []
    for pub in publishers:
        leaf = leaf_by_site[pub.pond]
        services.append(Service(
            f"collector-{pub.dataset}-{pub.box}", "collector", pub.box, pub.site, pub.dataset,
            (leaf.client_url,), pub.pond, pub.user, subject=pub.subject,
            pond_stream=pond_stream(pub.dataset),
            schema_version=_schema(fleet, pub.dataset)))
    hub_urls = tuple(s.client_url for s in hub)
    for model in fleet.dna.models:
        trainer = site_boxes(fleet, model.train_at)[0]
        services.append(Service(
            f"trainer-{model.name}", "trainer", trainer.name, model.train_at, model.dataset,
            hub_urls, HUB_DOMAIN, user_of(model.train_at), model=model.name,
            lake_stream=lake_stream(model.dataset),
            retrain_every_samples=model.retrain.every_samples,
            retrain_every_seconds=model.retrain.every_seconds,
            schema_version=_schema(fleet, model.dataset)))
        for site in model.serve_at:
            leaf = leaf_by_site[site]
            services.append(Service(
                f"inference-{model.name}-{site}", "inference", leaf.box, site, model.dataset,
                (leaf.client_url,), site, user_of(site), model=model.name,
                pond_stream=pond_stream(model.dataset)
                if any(p.site == site and p.dataset == model.dataset for p in ponds) else "",
                bind=f"{leaf.address}:{INFERENCE_PORT}",
                schema_version=_schema(fleet, model.dataset)))
    return tuple(services)


def _schema(fleet: Fleet, dataset: str) -> int:
    assert fleet.dna is not None
    return next(d.schema_version for d in fleet.dna.datasets if d.name == dataset)


def _conf_string(value: str) -> str:
    # Generated passwords are URL-safe base64: nothing here needs escaping.
    return '"' + value + '"'


def secret_files(topology: DnaTopology, box: str, passwords: dict[str, str]) -> dict[str, str]:
    """Path -> content of every secret ``box`` holds (each written 0600): the secrets
    include of its nats-server (password variables, and a leaf's hub URLs with its login)
    and a password file per client user of the box. ``passwords``: credential -> password
    (``DnaTopology.credentials``)."""
    files: dict[str, str] = {}
    server = topology.server_on(box)
    if server is not None:
        lines = [f"# Managed by dnabox (role dna): secrets of the nats-server on {box}."]
        for user in dict.fromkeys((*server.users, *server.leaf_users)):
            secret = passwords[topology.credential_of(user.name, box)]
            lines.append(f"{user.variable}: {_conf_string(secret)}")
        if server.role == "leaf":
            secret = passwords[server.remote_user]
            urls = [url.replace("nats-leaf://", f"nats-leaf://{server.remote_user}:{secret}@")
                    for url in server.hub_leafnode_urls]
            lines.append("DNA_HUB_URLS: [" + ", ".join(_conf_string(u) for u in urls) + "]")
        files[SECRETS_FILE] = "\n".join(lines) + "\n"
    for client in topology.clients.get(box, ()):
        files[password_file(client)] = passwords[topology.credential_of(client, box)] + "\n"
    return files
