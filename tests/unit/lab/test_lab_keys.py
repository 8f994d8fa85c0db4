"""SSH to a box is strict: the lab's key, the lab's known_hosts, no prompts, fast kex."""

from __future__ import annotations

from pathlib import Path

from dnabox.lab.keys import known_hosts_line, ssh_argv


def test_ssh_checks_host_keys_strictly_against_the_lab_known_hosts() -> None:
    argv = ssh_argv(key=Path("/l/id"), known_hosts=Path("/l/kh"), user="root",
                    address="10.201.1.11", port=22, command=["hostname"])
    options = [argv[i + 1] for i, a in enumerate(argv) if a == "-o"]
    assert "StrictHostKeyChecking=yes" in options
    assert "UserKnownHostsFile=/l/kh" in options
    assert "GlobalKnownHostsFile=/dev/null" in options
    assert "KexAlgorithms=curve25519-sha256" in options
    assert "BatchMode=yes" in options
    assert argv[-2:] == ["root@10.201.1.11", "hostname"]
    assert argv[argv.index("-i") + 1] == "/l/id"


def test_known_hosts_lines_carry_the_port_when_not_22() -> None:
    key = "ssh-ed25519 AAAAC3Nza root@core-1"
    assert known_hosts_line("10.0.0.1", 22, key) == "10.0.0.1 ssh-ed25519 AAAAC3Nza"
    assert known_hosts_line("10.0.0.1", 2222, key) == "[10.0.0.1]:2222 ssh-ed25519 AAAAC3Nza"
