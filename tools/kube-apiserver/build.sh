#!/usr/bin/env bash
# Builds a real kube-apiserver (for tests: an envtest-style API server without controllers) from
# Debian bookworm's `kubernetes` source package, offline once the source is downloaded.
#
# No wheel, npm package or Debian binary package ships kube-apiserver; the source package
# (1.20.5+really1.20.2, dependencies vendored) builds with Debian's Go 1.19 after two fixes:
#   1. the vendored github.com/modern-go/reflect2 1.0.1 segfaults under Go >= 1.18 on the first
#      custom-object create: Debian's golang-github-modern-go-reflect2-dev (1.0.2) replaces it;
#   2. pkg/generated/openapi/zz_generated.openapi.go is not in the tarball: the vendored
#      openapi-gen generates it over every package marked +k8s:openapi-gen=.
#
# Result: .cache/kube-apiserver/<hash>/kube-apiserver, where <hash> covers this script and the
# source package version, plus .cache/kube-apiserver/current (a symlink the test starter reads).
# A second run with the same hash only checks the binary and exits.
# Needs root for apt-get when golang-go, etcd-server, the reflect2 package or dpkg-dev are missing.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cache="$root/.cache/kube-apiserver"
mkdir -p "$cache"

need=()
command -v go >/dev/null || need+=(golang-go)
command -v etcd >/dev/null || need+=(etcd-server)
[ -d /usr/share/gocode/src/github.com/modern-go/reflect2 ] || need+=(golang-github-modern-go-reflect2-dev)
command -v dpkg-source >/dev/null || need+=(dpkg-dev)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# A private apt configuration for deb-src: the machine's own Debian sources with Types: deb-src,
# lists and downloads in our cache, so the system's apt state is untouched.
apt_dir="$cache/apt"
mkdir -p "$apt_dir/sources.list.d" "$apt_dir/lists/partial" "$apt_dir/archives/partial"
src_lists=(/etc/apt/sources.list.d/*.sources)
: > "$apt_dir/sources.list.d/debian-src.sources"
for f in "${src_lists[@]}" /etc/apt/sources.list; do
  [ -f "$f" ] || continue
  case "$f" in
    *.sources) grep -q 'deb.debian.org\|debian' "$f" && sed 's/^Types:.*/Types: deb-src/' "$f" \
                 >> "$apt_dir/sources.list.d/debian-src.sources" ;;
    *) grep -E '^deb .*debian' "$f" | sed 's/^deb /deb-src /' > "$apt_dir/sources.list.d/debian-src.list" || true ;;
  esac
done
apt_opts=(-o Dir::Etc::SourceList=/dev/null -o "Dir::Etc::SourceParts=$apt_dir/sources.list.d"
          -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache::Archives=$apt_dir/archives"
          -o Debug::NoLocking=1)

version_file="$cache/source-version"
if [ ! -s "$version_file" ]; then
  apt-get "${apt_opts[@]}" update -qq
  apt-cache "${apt_opts[@]}" showsrc kubernetes | sed -n 's/^Version: //p' | sort -V | tail -1 > "$version_file"
fi
version=$(cat "$version_file")
[ -n "$version" ] || { echo "kubernetes source package not found in deb-src lists" >&2; exit 1; }
key=$( (sha256sum "$here/build.sh" | cut -d' ' -f1; echo "$version") | sha256sum | cut -c1-16)
out="$cache/$key"
if [ -x "$out/kube-apiserver" ]; then
  ln -sfn "$key" "$cache/current"
  echo "kube-apiserver cached: $out/kube-apiserver ($version)"
  exit 0
fi

src="$cache/src"
if ! ls "$src"/kubernetes_*.dsc >/dev/null 2>&1; then
  mkdir -p "$src"
  (cd "$src" && apt-get "${apt_opts[@]}" source --download-only -qq "kubernetes=$version")
fi

work=$(mktemp -d "$cache/build.XXXXXX")
trap 'rm -rf "$work"' EXIT
gopath="$work/gopath"
tree="$gopath/src/k8s.io/kubernetes"
mkdir -p "$(dirname "$tree")"
dpkg-source --no-check -x "$(ls "$src"/kubernetes_*.dsc | head -1)" "$tree" >/dev/null

# Fix 1: reflect2 1.0.2 instead of the vendored 1.0.1.
rm -rf "$tree/vendor/github.com/modern-go/reflect2"
cp -r /usr/share/gocode/src/github.com/modern-go/reflect2 "$tree/vendor/github.com/modern-go/reflect2"

export GOPATH="$gopath" GO111MODULE=off CGO_ENABLED=0 GOFLAGS= GOCACHE="$cache/gocache"
cd "$tree"

# Fix 2: generate the OpenAPI definitions the apiserver links against (-R: vendor/k8s.io/*
# are symlinks into staging/, where apiextensions and apimachinery types live).
go build -o "$work/openapi-gen" ./vendor/k8s.io/kube-openapi/cmd/openapi-gen
dirs=$(grep -Rl --include='*.go' '+k8s:openapi-gen=' pkg cmd vendor/k8s.io 2>/dev/null \
       | xargs -n1 dirname | LC_ALL=C sort -u | sed 's|^|k8s.io/kubernetes/|' | paste -sd, -)
"$work/openapi-gen" --input-dirs "$dirs" \
  --output-base "$gopath/src" \
  --output-package k8s.io/kubernetes/pkg/generated/openapi \
  --output-file-base zz_generated.openapi \
  --go-header-file hack/boilerplate/boilerplate.generatego.txt \
  --report-filename "$work/openapi-violations.txt"
test -s pkg/generated/openapi/zz_generated.openapi.go

go build -trimpath -ldflags '-s -w' -o "$work/kube-apiserver" ./cmd/kube-apiserver
"$work/kube-apiserver" --version
mkdir -p "$out"
mv "$work/kube-apiserver" "$out/kube-apiserver"
ln -sfn "$key" "$cache/current"
# Builds of other script versions or sources are dropped: only the current one is kept.
find "$cache" -mindepth 1 -maxdepth 1 -type d -regextype posix-extended \
  -regex '.*/[0-9a-f]{16}' ! -name "$key" -exec rm -rf {} +
echo "kube-apiserver built: $out/kube-apiserver ($version)"
