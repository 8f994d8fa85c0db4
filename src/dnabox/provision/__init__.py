"""The provisioner: schedules the plan's DAG over SSH, Ansible and Pulumi."""
