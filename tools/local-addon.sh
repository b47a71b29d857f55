#!/usr/bin/env bash
# Makes the add-on as a *local* add-on folder, for Home Assistant installs before a release has
# published the add-on image (docs/releasing.md, "Installing before the first release").
#
# The binary is built here, on a PC, not on the Home Assistant machine: a from-source build
# there takes long and may not fit in a small Raspberry Pi's memory (numbers in
# docs/releasing.md). The folder's Dockerfile only copies the binary onto the same distroless
# base as the published image, so the Supervisor builds it in seconds.
#
#   tools/local-addon.sh aarch64|amd64 [OUT_DIR]          build the binary, then the folder
#   tools/local-addon.sh aarch64|amd64 OUT_DIR BINARY     the folder around a binary you have
#
# aarch64 is a Raspberry Pi 3/4/5 with the 64-bit Home Assistant OS; amd64 an Intel/AMD PC.
# The binary is built with Docker (buildx; any OS, no QEMU) when there is one, otherwise with
# docker/build-static.sh (Debian or Ubuntu with rustup, as root for the cross compiler).
# OUT_DIR defaults to target/local-addon/inverter_monitor. Copy it to the Home Assistant
# machine's /addons folder (Samba or SSH add-on), as /addons/inverter_monitor.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() { sed -n '10,11p' "$0" | sed 's/^# *//' >&2; exit 2; }
if [ $# -lt 1 ] || [ $# -gt 3 ]; then usage; fi
arch="$1"
out="${2:-target/local-addon/inverter_monitor}"
binary="${3:-}"
case "$arch" in
  aarch64) platform=arm64 ;;
  amd64) platform=amd64 ;;
  *) usage ;;
esac
addon=ha/inverter_monitor

if [ -z "$binary" ]; then
  build=$(mktemp -d)
  trap 'rm -rf "$build"' EXIT
  if docker buildx version >/dev/null 2>&1; then
    docker buildx build --file docker/Dockerfile --target binary --platform "linux/$platform" \
      --output "type=local,dest=$build" .
  else
    docker/build-static.sh "$platform" "$build"
  fi
  binary="$build/inverter-monitor"
fi
[ -f "$binary" ] || { echo "no binary at $binary" >&2; exit 1; }

rm -rf "$out"
mkdir -p "$out"
cp -r "$addon/translations" "$addon/DOCS.md" "$addon/README.md" "$addon/CHANGELOG.md" \
  "$addon/icon.png" "$addon/logo.png" "$out/"
install -m 755 "$binary" "$out/inverter-monitor"

# Without `image:` the Supervisor builds the folder's Dockerfile; with one arch, it offers the
# add-on only where this binary runs. awk rather than sed: the same on macOS.
awk -v arch="$arch" '
  /^image:/ { next }
  /^name: / { print $0 " (local build)"; next }
  /^arch:$/ { print; print "  - " arch; listing = 1; next }
  listing && /^  - / { next }
  { listing = 0; print }
' "$addon/config.yaml" > "$out/config.yaml"

# The published image's final stage, from the add-on's own Dockerfile, with the binary taken
# from the folder instead of the build stage: the two cannot drift apart.
base=$(sed -n 's/^FROM \(gcr\.io\/distroless\/[^ ]*\) AS run-amd64$/\1/p' "$addon/Dockerfile")
[ -n "$base" ] || { echo "$addon/Dockerfile: no run-amd64 stage to take the base image from" >&2; exit 1; }
{
  echo "# Made by tools/local-addon.sh from $addon/Dockerfile: the binary is built elsewhere."
  echo "FROM $base"
  echo "LABEL io.hass.arch=\"$arch\""
  sed -n '/^FROM run-\${TARGETARCH}$/,$p' "$addon/Dockerfile" |
    sed -e '1d' -e 's#^COPY --from=build /out/inverter-monitor #COPY inverter-monitor #'
} > "$out/Dockerfile"
grep -q '^COPY inverter-monitor ' "$out/Dockerfile" ||
  { echo "$addon/Dockerfile: the binary's COPY line was not found" >&2; exit 1; }

echo "local add-on for $arch in $out/ ($(du -sh "$out" | cut -f1)); copy it to /addons/inverter_monitor"
