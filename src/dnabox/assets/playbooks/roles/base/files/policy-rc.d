#!/bin/sh
# Managed by dnabox (role base): daemons on this box are started by dnabox-daemon.
exit 101
