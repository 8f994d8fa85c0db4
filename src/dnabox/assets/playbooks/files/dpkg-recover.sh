#!/bin/sh
# Managed by dnabox: runs before any apt on a box (site.yml's first task, and the direct
# program's package step embeds this file). A box that died while dpkg ran (power loss, a
# killed box) left dpkg's journal behind, and apt refuses to run until
# `dpkg --configure -a` has finished the interrupted work.
set -eu
if [ -n "$(ls -A /var/lib/dpkg/updates 2>/dev/null)" ]; then
  DEBIAN_FRONTEND=noninteractive dpkg --force-confdef --force-confold --configure -a >&2
  echo "CHANGED: interrupted package configuration finished"
fi
