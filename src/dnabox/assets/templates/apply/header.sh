# shellcheck shell=sh
# The header every dnabox apply script starts with (included when the script is rendered),
# and the direct program too (dnabox.plan.direct_program). Plain sh: no template syntax.
# A script run with --check prints what would change and changes nothing.
set -eu
# Wherever it runs from (Ansible, an SSH command, a systemd unit), the admin tools resolve.
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"
mode=${1:-apply}
check=0
[ "$mode" = --check ] && check=1
# systemd is PID 1 (sd_booted); elsewhere (containers, the lab) the box shares a kernel,
# its clock and its swap with a host, and dnabox-daemon starts what systemd would.
systemd=0
[ -d /run/systemd/system ] && systemd=1
changes=0

changed() { echo "CHANGED: $*"; changes=$((changes + 1)); }
apply() { [ "$check" = 1 ] || "$@"; }
