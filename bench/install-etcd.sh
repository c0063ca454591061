#!/usr/bin/env bash
# Installs Debian's etcd-server and etcd-client if etcd is missing (needs
# root for apt-get). The benchmark runs its own members on loopback ports;
# a system service, if the package starts one, is not used.
set -euo pipefail
if command -v etcd >/dev/null 2>&1 && command -v etcdctl >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "error: etcd is missing; install etcd-server and etcd-client (apt-get, as root)" >&2
    exit 1
fi
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq etcd-server etcd-client >/dev/null
etcd --version | head -1
