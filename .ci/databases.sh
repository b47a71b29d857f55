#!/usr/bin/env bash
# Installs the databases the InfluxDB tests start themselves, from Debian's packages, when their
# binaries are missing: victoria-metrics (InfluxDB line protocol on /write and /api/v2/write) and
# influxdb (InfluxDB 1.6, /write). The tests run their own instances on free loopback ports, so
# the packaged services are kept from starting.
set -euo pipefail
need=()
have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/bin/$1" ] || [ -x "/usr/sbin/$1" ]; }
have victoria-metrics || need+=(victoria-metrics)
have influxd || need+=(influxdb)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}"
  apt-get update -qq >/dev/null
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
echo "databases: victoria-metrics $(dpkg-query -W -f='${Version}' victoria-metrics 2>/dev/null || echo "?"), $(influxd version 2>&1 | head -1)"
