#!/usr/bin/env bash
# Starts a throw-away Mosquitto on a free loopback port for the MQTT tests; prints host:port.
# Installs Debian's package when missing. The caller stops it with the PID in $dir/pid.
set -euo pipefail
dir="$1"
if ! command -v mosquitto >/dev/null 2>&1 && [ ! -x /usr/sbin/mosquitto ]; then
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mosquitto >/dev/null
fi
bin=$(command -v mosquitto || echo /usr/sbin/mosquitto)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat > "$dir/mosquitto.conf" <<CONF
listener $port 127.0.0.1
allow_anonymous true
persistence false
CONF
"$bin" -c "$dir/mosquitto.conf" >"$dir/mosquitto.log" 2>&1 &
echo $! > "$dir/pid"
for _ in $(seq 100); do
  if python3 -c "import socket; socket.create_connection(('127.0.0.1', $port), 0.2)" 2>/dev/null; then
    echo "127.0.0.1:$port"
    exit 0
  fi
  sleep 0.1
done
echo "mosquitto did not start; its log:" >&2
cat "$dir/mosquitto.log" >&2
exit 1
