#!/usr/bin/env bash
# Installs scansim's build and test dependencies from Debian packages (as root, or via sudo).
# Skips apt-get entirely when everything is already there.
set -euo pipefail
PKGS=(
  build-essential cmake pkg-config git
  libpaho-mqtt-dev libcjson-dev check libncurses-dev libsqlite3-dev libpcap-dev
  libssl-dev openssl
  mosquitto mosquitto-clients tmux tshark python3 procps coreutils
  rabbitmq-server  # the harness's second broker kind (its own private nodes, not the service)
  gcc-arm-none-eabi libnewlib-arm-none-eabi binutils-arm-none-eabi
  clang libclang-rt-14-dev
  libmicrohttpd-dev libjs-chart.js  # the dashboard (--http) and the reports (--report)
  prometheus chromium chromium-driver python3-selenium  # the dashboard's prometheus and browser tests
)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
  echo "install-deps: all ${#PKGS[@]} packages present"
  exit 0
fi
SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# tshark asks whether non-root users may capture; answer no without a prompt.
echo "wireshark-common wireshark-common/install-setuid boolean false" | $SUDO debconf-set-selections || true
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
