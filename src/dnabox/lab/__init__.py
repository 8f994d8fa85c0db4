"""The lab: real boxes on this machine (network namespaces, own root filesystems, sshd).

Used by the CLI (`dnabox lab ...`) and by the integration tests; nothing else imports it.
"""

from dnabox.lab.keys import ssh_argv
from dnabox.lab.layout import LabLayout, plan_lab
from dnabox.lab.lifecycle import BoxStatus, LabUpReport, cache, down, freeze, replace, status, up
from dnabox.lab.paths import LabPaths

__all__ = ["BoxStatus", "LabLayout", "LabPaths", "LabUpReport", "cache", "down", "freeze",
           "plan_lab", "replace", "ssh_argv", "status", "up"]
