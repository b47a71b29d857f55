#!/bin/sh
# Builds a static (musl) inverter-monitor for Docker's TARGETARCH on whatever machine runs the
# build, so that an arm64 image needs no QEMU: cross-compiling Rust is fast, emulating rustc is
# 5-10 times slower. Used by docker/Dockerfile and ha/inverter_monitor/Dockerfile.
#   docker/build-static.sh amd64|arm64 OUT_DIR
set -eu
arch="$1"
out="$2"
case "$arch" in
  amd64) triple=x86_64-unknown-linux-musl gcc=x86_64-linux-gnu-gcc package=gcc-x86-64-linux-gnu ;;
  arm64) triple=aarch64-unknown-linux-musl gcc=aarch64-linux-gnu-gcc package=gcc-aarch64-linux-gnu ;;
  *) echo "unsupported architecture: $arch (amd64 and arm64 only)" >&2; exit 1 ;;
esac
if ! command -v "$gcc" >/dev/null 2>&1; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "$package" >/dev/null
fi
rustup target add "$triple"
# ring compiles a little C and assembly: the target's gcc does it and links, against the musl
# that Rust's musl target brings along.
upper=$(echo "$triple" | tr 'a-z-' 'A-Z_')
export "CARGO_TARGET_${upper}_LINKER=$gcc"
export "CC_$(echo "$triple" | tr '-' '_')=$gcc"
# The x86_64 build is a static PIE, relocated by musl's start-up so that its address is random
# at every start; its relative relocations are packed (DT_RELR): 3 KB instead of a 412 KB table
# that the start-up reads and that then stays resident (docs/performance.md). musl reads DT_RELR
# since 1.2.4, which Rust's musl targets bundle since Rust 1.93 (the image builds with 1.95): an
# older toolchain would link a binary that crashes at start, so the flag is here, beside the
# pinned toolchain, and not in a .cargo/config.toml every build would read. The aarch64 build
# is a non-PIE static executable, with no relocations to pack.
if [ "$arch" = amd64 ]; then
  export "CARGO_TARGET_${upper}_RUSTFLAGS=-C link-arg=-Wl,-z,pack-relative-relocs"
fi
# The image only runs `run`: without the demo's embedded MQTT broker (feature demo-broker),
# whose code would otherwise be mapped into every service's memory.
cargo build --release --locked --no-default-features --target "$triple" --bin inverter-monitor
mkdir -p "$out"
cp "target/$triple/release/inverter-monitor" "$out/inverter-monitor"
