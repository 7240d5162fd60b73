#!/usr/bin/env bash
# Installs the Debian data packages the workloads read, unless the data is already there.
# Skips apt when $FASHION_MNIST_DIR points at a directory, or the package's files are present.
set -euo pipefail
dir="${FASHION_MNIST_DIR:-/usr/share/datasets/fashion-mnist}"
if [ -f "$dir/train-images-idx3-ubyte.gz" ] && [ -f "$dir/t10k-labels-idx1-ubyte.gz" ]; then
  echo "Fashion-MNIST present in $dir"
  exit 0
fi
if [ -n "${FASHION_MNIST_DIR:-}" ]; then
  echo "error: FASHION_MNIST_DIR=$FASHION_MNIST_DIR does not hold the Fashion-MNIST IDX files" >&2
  exit 1
fi
if [ "$(id -u)" = 0 ]; then SUDO=""; elif command -v sudo >/dev/null; then SUDO="sudo"; else
  echo "error: run 'apt-get install dataset-fashion-mnist' as root, or set FASHION_MNIST_DIR" >&2
  exit 1
fi
echo "Installing the Debian package dataset-fashion-mnist ..."
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq dataset-fashion-mnist >/dev/null
echo "Fashion-MNIST installed in $dir"
