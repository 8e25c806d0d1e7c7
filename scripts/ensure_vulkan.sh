#!/usr/bin/env bash
# Make sure SAPIEN (ManiSkill's renderer) finds a usable Vulkan device.
# SAPIEN needs Vulkan even for state observations. On a machine without a GPU driver we
# install software Vulkan (mesa lavapipe) from the distribution's backports suite, because
# Debian 12's own mesa is too old for SAPIEN. The backports source is derived from the
# system's own apt sources, so whatever mirror the machine already uses is reused.
set -euo pipefail

have_gpu_icd() {
  ls /usr/share/vulkan/icd.d/nvidia_icd*.json /etc/vulkan/icd.d/nvidia_icd*.json \
     /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd*.json >/dev/null 2>&1
}

mesa_major() {
  dpkg-query -W -f='${Status} ${Version}\n' mesa-vulkan-drivers 2>/dev/null \
    | awk '$3 == "installed" { split($4, v, "[.:~+-]"); print v[1]; exit }'
}

if have_gpu_icd; then
  echo "vulkan: GPU driver found, nothing to install"; exit 0
fi
major=$(mesa_major || true)
if [ -n "${major}" ] && [ "${major}" -ge 24 ] && ldconfig -p | grep -q 'libvulkan.so.1'; then
  echo "vulkan: software Vulkan (mesa ${major}) already installed"; exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "vulkan: no usable Vulkan device and no apt-get; install a Vulkan driver (mesa >= 24 lavapipe) by hand" >&2
  exit 1
fi

SUDO=""
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "vulkan: need root (or sudo) to install mesa-vulkan-drivers" >&2; exit 1; }
  SUDO="sudo"
fi

. /etc/os-release
codename="${VERSION_CODENAME:?/etc/os-release has no VERSION_CODENAME}"
backports="${codename}-backports"
list=/etc/apt/sources.list.d/a2a-temporal-backports.sources

if ! grep -rqs "${backports}" /etc/apt/sources.list /etc/apt/sources.list.d/; then
  # Reuse the URI that serves the main suite (deb822 or one-line format).
  uri=$(awk -v s="${codename}" '
      /^URIs:/ {u=$2} /^Suites:/ { for (i=2;i<=NF;i++) if ($i==s) { print u; exit } }' \
      /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
  if [ -z "${uri}" ]; then
    uri=$(awk -v s="${codename}" '$1=="deb" { for (i=2;i<=NF;i++) if ($i==s) { print ($2 ~ /^\[/ ? $3 : $2); exit } }' \
      /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null || true)
  fi
  [ -n "${uri}" ] || { echo "vulkan: could not find the apt source for suite '${codename}'" >&2; exit 1; }
  keyring=/usr/share/keyrings/debian-archive-keyring.gpg
  printf 'Types: deb\nURIs: %s\nSuites: %s\nComponents: main\nSigned-By: %s\n' \
    "${uri}" "${backports}" "${keyring}" | ${SUDO} tee "${list}" >/dev/null
  echo "vulkan: added ${backports} from ${uri}"
fi
export DEBIAN_FRONTEND=noninteractive
${SUDO} apt-get update -qq
${SUDO} apt-get install -y -qq -t "${backports}" mesa-vulkan-drivers libvulkan1 >/dev/null
echo "vulkan: installed software Vulkan (mesa $(mesa_major)) from ${backports}"
