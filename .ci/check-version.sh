#!/usr/bin/env bash
# One version for everything a release ships: Cargo.toml's [package] version, the add-on's
# config.yaml (the Supervisor offers an update when it changes, and pulls IMAGE:VERSION), the
# add-on Dockerfile's BUILD_VERSION and a CHANGELOG.md entry. With a tag (v1.2.3, as the release
# workflow gets it) the tag must name that same version too.
#   .ci/check-version.sh          # CI: the files agree
#   .ci/check-version.sh v1.2.3   # release: the files agree and are 1.2.3
# Prints the version on success, each disagreement on failure (exit 1). Reads the files with sed
# so that it needs nothing but bash on a bare CI runner.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo=$(sed -n '/^\[package\]/,/^\[/s/^version *= *"\([^"]*\)".*/\1/p' Cargo.toml)
addon=$(sed -n 's/^version: *"\{0,1\}\([^"]*\)"\{0,1\} *$/\1/p' ha/inverter_monitor/config.yaml)
docker=$(sed -n 's/^ARG BUILD_VERSION=\(.*\)$/\1/p' ha/inverter_monitor/Dockerfile)

problems=()
[ -n "$cargo" ] || problems+=("Cargo.toml: no [package] version")
[ "$addon" = "$cargo" ] || problems+=("ha/inverter_monitor/config.yaml: version '$addon', Cargo.toml has '$cargo'")
[ "$docker" = "$cargo" ] ||
  problems+=("ha/inverter_monitor/Dockerfile: ARG BUILD_VERSION='$docker', Cargo.toml has '$cargo'")
grep -qx "## $cargo" ha/inverter_monitor/CHANGELOG.md ||
  problems+=("ha/inverter_monitor/CHANGELOG.md: no '## $cargo' entry")
if [ $# -gt 0 ]; then
  [ "$1" = "v$cargo" ] || problems+=("tag '$1' is not v$cargo (Cargo.toml)")
fi

if [ ${#problems[@]} -gt 0 ]; then
  printf 'version mismatch: %s\n' "${problems[@]}" >&2
  exit 1
fi
echo "$cargo"
