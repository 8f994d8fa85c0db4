"""Kubernetes layers Pulumi composes per cluster: tier baseline, runtimes, networks, mesh.

Builders (baseline, runtimes, networks, mesh) are pure: fleet in, plain manifests out.
``components`` wraps them as Pulumi ComponentResources; ``program`` is what the stacks run.
"""
