#!/usr/bin/env bash
# Runs tools/bench/compare.py (muonlab vs the PyTorch reference, see tools/bench/README.md) with
# Debian's /usr/bin/python3, installing python3-torch first when it is missing. Benchmarking is the
# only thing that needs it: training never does. Works from any directory; arguments go to
# compare.py unchanged.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

if ! /usr/bin/python3 -c 'import torch' >/dev/null 2>&1; then
  if [[ "$(id -u)" -ne 0 ]]; then
    echo "compare.sh: /usr/bin/python3 cannot import torch; install it as root:" \
      "apt-get install python3-torch" >&2
    exit 1
  fi
  echo "compare.sh: installing python3-torch (for the PyTorch reference only)" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq python3-torch >&2
  /usr/bin/python3 -c 'import torch' # fails loudly if the install did not help
fi

exec /usr/bin/python3 -B "$here/compare.py" "$@"
