#!/usr/bin/env bash
# Installs scansim's build and test dependencies from Debian packages (as root, or via sudo).
# Skips apt-get entirely when everything is already there. Also enables Debian source
# packages (deb-src, from the same mirrors as the binary ones) so the ARM build can fetch
# cJSON's source with `apt-get source` (cmake/debian_cjson.cmake).
set -euo pipefail
PKGS=(
  build-essential cmake pkg-config git
  libpaho-mqtt-dev libmosquitto-dev libcjson-dev check libncurses-dev libsqlite3-dev libpcap-dev
  libssl-dev openssl
  mosquitto mosquitto-clients tmux tshark python3 procps coreutils
  python3-cryptography python3-yaml  # make-pki.sh for many devices; manifest checks
  rabbitmq-server  # the harness's second broker kind (its own private nodes, not the service)
  gcc-arm-none-eabi libnewlib-arm-none-eabi binutils-arm-none-eabi
  clang libclang-rt-14-dev
  qemu-system-arm dpkg-dev
  libmicrohttpd-dev libjs-chart.js  # the dashboard (--http) and the reports (--report)
  prometheus chromium chromium-driver python3-selenium  # the dashboard's prometheus and browser tests
)
SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi

# deb-src entries mirroring every deb entry: deb822 files (Debian 12's debian.sources) get
# a twin with "Types: deb-src", one-line lists get "deb-src" lines.
deb_src_file=/etc/apt/sources.list.d/scansim-deb-src
need_update=0
if ! grep -rqsE '^(deb-src |Types:.*deb-src)' /etc/apt/sources.list /etc/apt/sources.list.d/; then
  src=$( { for f in /etc/apt/sources.list.d/*.sources; do
             [[ -f $f ]] && sed -E 's/^Types:.*$/Types: deb-src/' "$f" && echo; done; } )
  if [[ -n $src ]]; then
    printf '%s\n' "$src" | $SUDO tee "$deb_src_file.sources" >/dev/null
  fi
  lines=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null | sed -nE 's/^deb /deb-src /p' || true)
  if [[ -n $lines ]]; then
    printf '%s\n' "$lines" | $SUDO tee "$deb_src_file.list" >/dev/null
  fi
  echo "install-deps: enabled deb-src entries ($deb_src_file.*)"
  need_update=1
fi

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
  if ((need_update)); then $SUDO apt-get update -q; fi
  echo "install-deps: all ${#PKGS[@]} packages present"
  exit 0
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# tshark asks whether non-root users may capture; answer no without a prompt.
echo "wireshark-common wireshark-common/install-setuid boolean false" | $SUDO debconf-set-selections || true
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
