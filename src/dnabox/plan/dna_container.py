"""The reference service as containerd containers on lab and bare-metal boxes.

No image registry is needed: the container's root is a small directory on the box whose
``/usr`` is the box's own, bind-mounted read-only (Debian's python3 and python3-numpy, which
the ``dna`` role installs), plus the service's Python code and the pure-Python nats client
shipped by dnabox as managed files. The Kubernetes form runs the same modules with the same
arguments from an image (``images/dna-service/Containerfile``); both read
``dnabox.plan.dna_services``.
"""

from __future__ import annotations

import shlex
from functools import cache
from importlib import resources
from importlib.util import find_spec
from pathlib import Path

from dnabox.plan.dna import DnaTopology, Service
from dnabox.plan.dna_services import (
    CONFIG_DIR,
    SERVICES,
    STATE_DIR,
    config_file,
    cpus,
    memory_bytes,
    render_config,
)

IMAGE_DIR = "/var/lib/dnabox/dna/image"
PYTHON_DIR = "opt/python"
LOG_DIR = "/var/log/dnabox/dna"
SECRETS_DIR = "/etc/dnabox/dna"
CONTAINER_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# Bookworm's merged /usr: these are symlinks into /usr on the box and in the container.
USR_LINKS = ("bin", "sbin", "lib", "lib64")
# Debian's alternatives (numpy's libblas.so.3 is one) are links through /etc/alternatives.
ALTERNATIVES = "/etc/alternatives"
MOUNT_POINTS = ("usr", "proc", "sys", "dev", "tmp", "run", ALTERNATIVES.lstrip("/"),
                SECRETS_DIR.lstrip("/"), STATE_DIR.lstrip("/"))


def _package_files(package: str) -> dict[str, bytes]:
    spec = find_spec(package)
    if spec is None or spec.origin is None:
        raise RuntimeError(f"python package {package} is not installed")
    root = Path(spec.origin).parent
    base = root.parent
    return {
        str(path.relative_to(base)): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file() and (path.suffix == ".py" or path.name == "py.typed")
    }


def image_files() -> dict[str, bytes]:
    """Path under ``IMAGE_DIR`` -> content: the service code and the nats client.

    Only ``dnabox/__init__.py``, ``dnabox/dna`` and ``nats`` are shipped: the service
    imports nothing else of dnabox (pydantic and paramiko are not on the box).
    """
    return dict(_image_files())


@cache
def _image_files() -> tuple[tuple[str, bytes], ...]:
    # Read once per process: the planner asks for every box of the layer.
    files = {f"{PYTHON_DIR}/{path}": data for path, data in _package_files("nats").items()}
    dnabox_root = resources.files("dnabox")
    files[f"{PYTHON_DIR}/dnabox/__init__.py"] = dnabox_root.joinpath("__init__.py").read_bytes()
    for path, data in _package_files("dnabox.dna").items():
        files[f"{PYTHON_DIR}/dnabox/{path}"] = data
    return tuple(sorted(files.items()))


def rootfs_script() -> str:
    """Shell (idempotent) laying out the container root around the shipped files."""
    dirs = " ".join(shlex.quote(f"{IMAGE_DIR}/{d}") for d in MOUNT_POINTS)
    lines = ["set -e", f"mkdir -p {dirs} {shlex.quote(STATE_DIR)} {shlex.quote(LOG_DIR)}"]
    for link in USR_LINKS:
        target = shlex.quote(f"{IMAGE_DIR}/{link}")
        lines.append(f"[ -L {target} ] || ln -s usr/{link} {target}")
    return "\n".join(lines) + "\n"


def container_id(service: Service) -> str:
    return f"dnabox-{service.name}"


def ctr_run_argv(service: Service, *extra: str, detach: bool = True) -> list[str]:
    """``ctr run`` for one service instance on its box (host network: it binds the box's
    D-N-A address and reaches the NATS servers there)."""
    spec = SERVICES[service.role]
    name = container_id(service)
    argv = ["ctr", "run", "--net-host", "--rootfs",
            "--cpus", f"{cpus(spec.resources.cpu_limit):g}",
            "--memory-limit", str(memory_bytes(spec.resources.memory_limit)),
            "--mount", "type=bind,src=/usr,dst=/usr,options=rbind:ro",
            "--mount", f"type=bind,src={ALTERNATIVES},dst={ALTERNATIVES},options=rbind:ro",
            "--mount", f"type=bind,src={SECRETS_DIR},dst={SECRETS_DIR},options=rbind:ro",
            "--mount", f"type=bind,src={STATE_DIR},dst={STATE_DIR},options=rbind:rw",
            # A --rootfs container has no image config: no PATH unless given (runc then
            # finds no python3, seen on the lab).
            "--env", f"PATH={CONTAINER_PATH}",
            "--env", f"PYTHONPATH=/{PYTHON_DIR}", "--env", "PYTHONDONTWRITEBYTECODE=1"]
    if detach:
        argv += ["--detach", "--log-uri", f"file://{LOG_DIR}/{service.name}.log"]
        run_id = name
    else:
        argv += ["--rm"]
        run_id = f"{name}-run"
    return [*argv, IMAGE_DIR, run_id, *spec.argv(config_file(service), *extra)]


def start_script(service: Service) -> str:
    """Start the service's container unless its task is running (a stopped one is replaced)."""
    name = container_id(service)
    quoted = shlex.quote(name)
    return (
        f"if [ \"$(ctr task ls 2>/dev/null | awk '$1 == \"{name}\" {{print $3}}')\" "
        "!= RUNNING ]; then\n"
        f"  ctr task rm -f {quoted} >/dev/null 2>&1 || true\n"
        f"  ctr container rm {quoted} >/dev/null 2>&1 || true\n"
        f"  {shlex.join(ctr_run_argv(service))}\n"
        "fi\n"
    )


def start_file(service: Service) -> str:
    """Where the box keeps a long-running service's start script (``dna_services`` role)."""
    return f"{CONFIG_DIR}/{service.name}.start"


def start_file_content(service: Service) -> str:
    """The start script as the box receives it: the root laid out, then ``start_script``.
    The role's apply script runs it when the container is not running, or runs something
    else (its code, config or this script changed: their digest is the container's stamp)."""
    name = container_id(service)
    log = shlex.quote(f"{LOG_DIR}/{service.name}.log")
    # A service that stops at once (a bad config, a missing library) fails the role here,
    # with its log, rather than at the next liveness probe.
    settle = (
        "for _ in 1 2 3 4 5 6 7 8 9 10; do\n"
        f"  if [ \"$(ctr task ls 2>/dev/null | awk '$1 == \"{name}\" {{print $3}}')\" "
        "!= RUNNING ]; then\n"
        f"    echo \"{service.name} stopped after it started:\" >&2; tail -n 20 {log} >&2\n"
        "    exit 1\n"
        "  fi\n"
        "  sleep 0.2\n"
        "done\n")
    return ("#!/bin/sh\n"
            f"# Managed by dnabox (role dna_services): the container of {service.name}.\n"
            + rootfs_script() + start_script(service) + settle)


def box_files(topology: DnaTopology, box: str) -> dict[str, tuple[str, str]]:
    """dest -> (mode, content): what the ``dna_services`` role ships to ``box``, none of it
    a template: the image's code (the same on every box), each service's JSON config and
    each long-running service's start script."""
    services = [s for s in topology.services if s.box == box]
    if not services:
        return {}
    files = {f"{IMAGE_DIR}/{path}": ("0644", data.decode())
             for path, data in _image_files()}
    for service in services:
        files[config_file(service)] = ("0644", render_config(topology, service).to_json())
        if SERVICES[service.role].long_running:
            files[start_file(service)] = ("0755", start_file_content(service))
    return files


def stop_script(service: Service) -> str:
    name = shlex.quote(container_id(service))
    return (f"ctr task kill -s SIGTERM {name} >/dev/null 2>&1 || true\n"
            f"ctr task rm -f {name} >/dev/null 2>&1 || true\n"
            f"ctr container rm {name} >/dev/null 2>&1 || true\n")


def host_argv(service: Service, *extra: str) -> list[str]:
    """Run a service's module once on the box itself, outside a container: the box's python3
    and numpy are the ones the container bind-mounts, the code is the image's. Used for
    short client runs (``dnabox dna train`` asking the running trainer)."""
    spec = SERVICES[service.role]
    return ["env", f"PYTHONPATH={IMAGE_DIR}/{PYTHON_DIR}", "PYTHONDONTWRITEBYTECODE=1",
            *spec.argv(config_file(service), *extra)]


def write_image(directory: Path) -> int:
    """Write ``image_files()`` under ``directory`` (the Containerfile's build context)."""
    for path, data in image_files().items():
        target = directory / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    return len(image_files())


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="Write the dna service image's files.")
    parser.add_argument("--image-dir", type=Path, required=True)
    print(f"{write_image(parser.parse_args().image_dir)} files")
