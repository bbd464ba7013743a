#!/bin/sh
# The helpers are installed and say how they are used; outside a build they find no cache.
set -e
jetforge-tarball --help | grep -q "jetforge-tarball build NAME DIR"
test -x /usr/local/bin/jetforge-pip
head -n 1 /usr/local/bin/jetforge-pip | grep -q python3
if jetforge-tarball fetch nothing-here /tmp/nothing; then exit 1; fi
echo "cache-tools ok"
