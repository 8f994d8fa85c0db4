"""Adapters to the outside world: SSH, Ansible, Pulumi, Graphviz. Each wrapped once."""
