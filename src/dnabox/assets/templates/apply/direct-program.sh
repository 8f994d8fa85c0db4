# shellcheck shell=sh
# The functions of the direct program (dnabox.plan.direct_program), after the shared header: the
# program itself is only data, a call of these per file and package list, and the roles'
# apply scripts. Plain sh: no template syntax.
export DEBIAN_FRONTEND=noninteractive
umask 022
# step NAME: what the program does next, so a failure names the step it happened in.
step() { echo "@@dnabox-step $*"; }
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# put DEST MODE FLAG < base64: replace DEST when content or mode differ; FLAG marks the
# role whose handlers (the apply script's --reload) must then run.
put() {
  mkdir -p "$(dirname "$1")"
  base64 -d > "$1.dnabox-new"
  chmod "$2" "$1.dnabox-new"
  if cmp -s "$1.dnabox-new" "$1" && [ "$(stat -c %a "$1")" = "${2#0}" ]; then
    rm -f "$1.dnabox-new"
  else
    mv -f "$1.dnabox-new" "$1"
    changed "file $1"
    eval "$3=1"
  fi
}
# quiet COMMAND...: output only when it fails (apt's progress is noise on success).
quiet() {
  "$@" > "$log" 2>&1 || { status=$?; tail -n 25 "$log" >&2; return "$status"; }
}
# install_missing PACKAGE...: the packages not installed yet, in one apt transaction.
install_missing() {
  installed=" $(dpkg-query -W -f='${db:Status-Status} ${Package}\n' "$@" 2>/dev/null \
    | awk '$1 == "installed" {printf "%s ", $2}')"
  missing=""
  for package in "$@"; do
    case "$installed" in *" $package "*) ;; *) missing="$missing $package" ;; esac
  done
  if [ -n "$missing" ]; then
    # Retries: a mirror (or the lab's repository) busy with a whole fleet refuses some.
    # Lock timeout: an apt that a lost run left going on the box (or unattended-upgrades)
    # is waited for, not failed on.
    quiet apt-get -q -o Acquire::Retries=5 -o DPkg::Lock::Timeout=300 update
    # shellcheck disable=SC2086
    quiet apt-get install -y -q --no-install-recommends -o Acquire::Retries=5 \
      -o DPkg::Lock::Timeout=300 \
      -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold $missing
    changed "packages installed:$missing"
  fi
}
