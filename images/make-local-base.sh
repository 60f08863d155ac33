#!/usr/bin/env bash
# Makes a Debian bookworm + Python 3.11 base image offline-capable machines can build on
# (no registry needed): mmdebstrap from Debian's mirrors, then `docker import`.
# Usage: images/make-local-base.sh [IMAGE]   (default kfpkit-local/debian-python:bookworm)
set -euo pipefail
image=${1:-kfpkit-local/debian-python:bookworm}
if docker image inspect "$image" >/dev/null 2>&1; then echo "$image exists"; exit 0; fi
command -v mmdebstrap >/dev/null || { apt-get update -qq && apt-get install -y -qq mmdebstrap; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mmdebstrap --quiet --variant=minbase \
  --include=python3,python3-venv,python3-pip,ca-certificates bookworm "$tmp/base.tar"
docker import "$tmp/base.tar" "$image" >/dev/null
echo "$image created"
