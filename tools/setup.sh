#!/usr/bin/env bash
# Installs the Debian 12 packages muonlab needs to build, test and run. Idempotent: installs only
# what is missing. Runs apt-get as root, or through sudo otherwise. Also points libblas.so.3 at
# OpenBLAS (OpenMP build): with the reference BLAS LibTorch runs about 15x slower.
set -euo pipefail

PACKAGES=(
  build-essential cmake pkg-config git
  libtorch-dev libopenblas0-openmp
  libsentencepiece-dev sentencepiece
  libyaml-cpp-dev libspdlog-dev libfmt-dev nlohmann-json3-dev libxxhash-dev
  catch2 bible-kjv python3-matplotlib
  clang libclang-rt-14-dev
)

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

missing=()
for package in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$package")
  fi
done

if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
    "${missing[@]}" >/dev/null
fi

openblas=/usr/lib/x86_64-linux-gnu/openblas-openmp/libblas.so.3
current=$(readlink -f /etc/alternatives/libblas.so.3-x86_64-linux-gnu 2>/dev/null || true)
if [ -e "$openblas" ] && [ "$current" != "$openblas" ]; then
  echo "setup: selecting OpenBLAS (OpenMP) as libblas.so.3"
  as_root update-alternatives --set libblas.so.3-x86_64-linux-gnu "$openblas"
fi
echo "setup: all dependencies present"
