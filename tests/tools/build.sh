#!/usr/bin/env bash
# Builds the real engines the tests drive — the Pulumi CLI, pulumi-kubernetes' provider, a local
# Kubernetes control plane (etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok),
# actionlint, promtool and AWS's Lambda Runtime Interface Emulator — from the Go module proxy, at
# the versions in versions.env, into a cache outside the repository keyed by version. A tool already
# built is reused, so a warm run takes seconds.
# wrk, the load generator the benchmarks drive, is the one on PATH, or else Debian's package
# unpacked into the cache (no root needed). The Go it builds with is the one in go-version, which the
# workflows' setup-go reads too: an older local Go hands over to that toolchain (GOTOOLCHAIN).
#   build.sh                build what is missing, saying what and how long
#   build.sh --only GROUP   build one group (pulumi, kubernetes-provider, control-plane, checkers)
#   build.sh --paths        print NAME=path for every tool (builds nothing; missing tools print empty)
#   build.sh --cache GROUP  print the group's cache key and folders, as GitHub step outputs
#   build.sh --modules      print every Go module@version the builds start from
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
# shellcheck disable=SC1091 # versions.env, beside this script
source "$here/versions.env"
GO_VERSION=$(tr -d '[:space:]' < "$here/go-version")
cache=${TWINSERVE_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/twinserve/tools}
# The provider registers as the version of the pulumi-kubernetes SDK that infra/ pins.
provider_version=$(sed -n 's/^pulumi-kubernetes==\([0-9.]*\).*/\1/p' "$repo/infra/requirements.txt")

pulumi_dir=$cache/pulumi-v$PULUMI_VERSION
provider_dir=$cache/pulumi-kubernetes-$KUBERNETES_PROVIDER_MODULE-as-v$provider_version
kube_dir=$cache/kubernetes-v$KUBERNETES_VERSION
etcd_dir=$cache/etcd-v$ETCD_VERSION
kwok_dir=$cache/kwok-v$KWOK_VERSION-stages-$(printf '%s' "$KWOK_STAGES" | sha256sum | cut -c1-8)
actionlint_dir=$cache/actionlint-v$ACTIONLINT_VERSION
promtool_dir=$cache/promtool-$PROMETHEUS_MODULE
rie_dir=$cache/aws-lambda-rie-$LAMBDA_RIE_MODULE
wrk_dir=$cache/wrk-debian

# A `pulumi` already on PATH at the pinned version is used as it is, unless TWINSERVE_BUILT_PULUMI
# asks for the one built here from checked modules (.github/scripts/pulumi-cli.sh).
own_pulumi() {
  local path
  [ "${TWINSERVE_BUILT_PULUMI:-}" != true ] || return 1
  path=$(command -v pulumi 2> /dev/null) || return 1
  [ "$("$path" version 2> /dev/null)" = "v$PULUMI_VERSION" ] && echo "$path"
}

paths() {
  local pulumi=$pulumi_dir/pulumi
  [ -x "$pulumi" ] || pulumi=$(own_pulumi) || pulumi=""
  echo "PULUMI=$pulumi"
  echo "PULUMI_VERSION=$PULUMI_VERSION"
  echo "KUBERNETES_PROVIDER=$provider_dir/pulumi-resource-kubernetes"
  echo "KUBERNETES_PROVIDER_VERSION=$provider_version"
  echo "KUBERNETES_PROVIDER_ORIGIN=github.com/pulumi/pulumi-kubernetes/provider/v4@$KUBERNETES_PROVIDER_MODULE"
  echo "KUBE_APISERVER=$kube_dir/kube-apiserver"
  echo "KUBE_CONTROLLER_MANAGER=$kube_dir/kube-controller-manager"
  echo "KUBE_SCHEDULER=$kube_dir/kube-scheduler"
  echo "KUBERNETES_VERSION=$KUBERNETES_VERSION"
  echo "ETCD=$etcd_dir/etcd"
  echo "KWOK=$kwok_dir/kwok"
  echo "KWOK_STAGES=$kwok_dir/stages.yaml"
  echo "ACTIONLINT=$actionlint_dir/actionlint"
  echo "PROMTOOL=$promtool_dir/promtool"
  echo "LAMBDA_RIE=$rie_dir/aws-lambda-rie"
  echo "WRK=$(command -v wrk 2> /dev/null || echo "$wrk_dir/wrk")"
}

# The cache folders of each group, the unit a CI job builds and caches (one key per group).
group_dirs() {
  case $1 in
    pulumi) echo "$pulumi_dir" ;;
    kubernetes-provider) echo "$provider_dir" ;;
    control-plane) printf '%s\n' "$etcd_dir" "$kube_dir" "$kwok_dir" ;;
    checkers) printf '%s\n' "$actionlint_dir" "$promtool_dir" "$rie_dir" "$wrk_dir" ;;
    *)
      echo "unknown group '$1' (pulumi, kubernetes-provider, control-plane, checkers)" >&2
      return 2
      ;;
  esac
}

# GitHub step outputs for actions/cache: a key naming every version the group's folders hold.
cache_outputs() {
  local dirs
  dirs=$(group_dirs "$1")
  echo "key=twinserve-tools-$1-go$GO_VERSION-$(uname -m)-$(printf '%s' "$dirs" | xargs -n1 basename | sha256sum | cut -c1-16)"
  printf 'path<<EOF\n%s\nEOF\n' "$dirs"
}

modules() {
  echo "github.com/pulumi/pulumi/pkg/v3@v$PULUMI_VERSION"
  echo "github.com/pulumi/pulumi/sdk/v3@v$PULUMI_VERSION"
  echo "github.com/pulumi/pulumi-kubernetes/provider/v4@$KUBERNETES_PROVIDER_MODULE"
  echo "github.com/pulumi/pulumi-kubernetes/sdk/v4@$KUBERNETES_PROVIDER_SDK_MODULE"
  echo "k8s.io/kubernetes@v$KUBERNETES_VERSION"
  echo "go.etcd.io/etcd/server/v3@v$ETCD_VERSION"
  echo "sigs.k8s.io/kwok@v$KWOK_VERSION"
  echo "github.com/rhysd/actionlint@v$ACTIONLINT_VERSION"
  echo "github.com/prometheus/prometheus@$PROMETHEUS_MODULE"
  echo "github.com/aws/aws-lambda-runtime-interface-emulator@$LAMBDA_RIE_MODULE"
}

case "${1:-}" in
  --paths)
    paths
    exit 0
    ;;
  --cache)
    cache_outputs "${2:?--cache needs a group}"
    exit 0
    ;;
  --modules)
    modules
    exit 0
    ;;
  --only)
    only=${2:?--only needs a group}
    group_dirs "$only" > /dev/null
    ;;
  "") only="" ;;
  *)
    echo "unknown argument '$1' (see the header of $0)" >&2
    exit 2
    ;;
esac
wanted() { [ -z "$only" ] || [ "$only" = "$1" ]; }

command -v go > /dev/null || PATH=$PATH:/usr/local/go/bin
command -v go > /dev/null || {
  echo "make tools needs Go to build the engines (go$GO_VERSION, tests/tools/go-version; an older Go 1.21+ fetches it); install it, or put pulumi v$PULUMI_VERSION on PATH for the CLI" >&2
  exit 1
}
# The pinned Go or newer builds as it is; an older one hands over to the pinned toolchain, which the
# go command fetches from the module proxy (golang.org/toolchain).
local_go=$(go env GOVERSION | sed 's/^go//')
if [ "$(printf '%s\n%s\n' "$GO_VERSION" "$local_go" | sort -V | head -1)" = "$GO_VERSION" ]; then
  toolchain=local
else
  toolchain=go$GO_VERSION
  echo "tools: your Go is $local_go; building with go$GO_VERSION (tests/tools/go-version), fetched by the go command"
fi
export GOFLAGS=-mod=mod GOTOOLCHAIN=$toolchain
scratch=$(mktemp -d)
trap 'chmod -R u+w "$scratch" 2> /dev/null; rm -rf "$scratch"' EXIT

# A throwaway module that requires what it builds (modules with replace lines can't be `go install`ed).
wrapper() {
  local dir=$scratch/$1
  mkdir -p "$dir"
  # go 1.24: the wrapper's go line sets the binaries' GODEBUG defaults; the modules' own raise the rest.
  printf 'module twinserve.local/tools/%s\n\ngo 1.24\n' "$1" > "$dir/go.mod"
  echo "$dir"
}

build_pulumi() {
  local mod
  mod=$(wrapper pulumi)
  cat >> "$mod/go.mod" << EOF

require (
	github.com/pulumi/pulumi/pkg/v3 v$PULUMI_VERSION
	github.com/pulumi/pulumi/sdk/v3 v$PULUMI_VERSION
)

replace github.com/atotto/clipboard => github.com/tgummerer/clipboard v0.0.0-20241001131231-d02d263e614e
EOF
  (cd "$mod" && go build -o "$1/pulumi" \
    -ldflags "-X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v$PULUMI_VERSION" \
    github.com/pulumi/pulumi/pkg/v3/cmd/pulumi)
}

build_provider() {
  local module=github.com/pulumi/pulumi-kubernetes/provider/v4 src=$scratch/provider
  cp -r "$(go mod download -json "$module@$KUBERNETES_PROVIDER_MODULE" | jq_dir)" "$src"
  chmod -R u+w "$src"
  # Its go.mod points the SDK at a sibling folder the module zip lacks: require the published one.
  sed -i '/^replace github.com\/pulumi\/pulumi-kubernetes\/sdk\/v4 => /d' "$src/go.mod"
  sed -i "s|\(github.com/pulumi/pulumi-kubernetes/sdk/v4\) v[^ ]*|\1 $KUBERNETES_PROVIDER_SDK_MODULE|" "$src/go.mod"
  # The binary embeds the versioned schema and mapping its generate.go writes; the same, without codegen.
  python3 "$here/provider_embeds.py" "$src/cmd/pulumi-resource-kubernetes" "$provider_version"
  (cd "$src" && go build -o "$1/pulumi-resource-kubernetes" \
    -ldflags "-X $module/pkg/version.Version=$provider_version" ./cmd/pulumi-resource-kubernetes)
}

build_kubernetes() {
  local mod gomod
  mod=$(wrapper kubernetes)
  gomod=$(go mod download -json "k8s.io/kubernetes@v$KUBERNETES_VERSION" | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')
  # kubernetes points every k8s.io/* staging module at ./staging: use the published ones of this release.
  {
    echo
    echo "require k8s.io/kubernetes v$KUBERNETES_VERSION"
    sed -n "s|^\s*\(k8s.io/[a-z0-9-]*\) => ./staging/.*|replace \1 => \1 v0.${KUBERNETES_VERSION#1.}|p" "$gomod"
  } >> "$mod/go.mod"
  # No `go mod tidy`: nothing here imports kubernetes, so it would drop the require and build @latest.
  (cd "$mod" && go build -o "$1/" \
    -ldflags "-X k8s.io/component-base/version.gitVersion=v$KUBERNETES_VERSION" \
    k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kube-scheduler)
}

build_etcd() {
  local mod
  mod=$(wrapper etcd)
  (cd "$mod" && go get "go.etcd.io/etcd/server/v3@v$ETCD_VERSION" > /dev/null 2>&1 \
    && go build -o "$1/etcd" go.etcd.io/etcd/server/v3)
}

build_kwok() {
  local src
  GOBIN=$1 go install "sigs.k8s.io/kwok/cmd/kwok@v$KWOK_VERSION"
  src=$(go mod download -json "sigs.k8s.io/kwok@v$KWOK_VERSION" | jq_dir)/kustomize/stage
  # kwok does nothing without stages.
  for stage in $KWOK_STAGES; do
    cat "$src/$stage.yaml"
    echo "---"
  done > "$1/stages.yaml"
}

build_actionlint() {
  GOBIN=$1 go install "github.com/rhysd/actionlint/cmd/actionlint@v$ACTIONLINT_VERSION"
}

build_promtool() {
  GOBIN=$1 go install "github.com/prometheus/prometheus/cmd/promtool@$PROMETHEUS_MODULE"
}

build_rie() {
  GOBIN=$1 go install "github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie@$LAMBDA_RIE_MODULE"
}

# Debian's wrk and its LuaJIT, unpacked, behind a wrapper that finds the library beside it.
fetch_wrk() {
  (cd "$1" && apt-get download wrk libluajit-5.1-2 > /dev/null)
  for deb in "$1"/*.deb; do dpkg-deb -x "$deb" "$1/root"; done
  rm "$1"/*.deb
  cat > "$1/wrk" << 'EOF'
#!/bin/sh
here=$(dirname "$(readlink -f "$0")")
LD_LIBRARY_PATH=$(echo "$here"/root/usr/lib/*-linux-gnu)${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} exec "$here/root/usr/bin/wrk" "$@"
EOF
  chmod +x "$1/wrk"
}

jq_dir() { python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])'; }

# Builds into a scratch folder and moves it into the cache only when complete.
tool() {
  local name=$1 dir=$2 build=$3 started=$SECONDS
  if [ -d "$dir" ]; then
    echo "tools: $name cached in $dir"
    return
  fi
  echo "tools: building $name (a cold build takes minutes; see README)"
  mkdir -p "$scratch/out-$name" "$cache"
  "$build" "$scratch/out-$name"
  rm -rf "$dir"
  mv "$scratch/out-$name" "$dir"
  echo "tools: built $name in $((SECONDS - started)) s into $dir"
}

if wanted pulumi; then
  if ! own=$(own_pulumi); then
    tool "pulumi v$PULUMI_VERSION" "$pulumi_dir" build_pulumi
  else
    echo "tools: using your pulumi at $own (v$PULUMI_VERSION)"
  fi
fi
if wanted kubernetes-provider; then
  tool "pulumi-resource-kubernetes ($KUBERNETES_PROVIDER_MODULE as v$provider_version)" "$provider_dir" build_provider
fi
if wanted control-plane; then
  tool "etcd v$ETCD_VERSION" "$etcd_dir" build_etcd
  tool "kube-apiserver, kube-controller-manager, kube-scheduler v$KUBERNETES_VERSION" "$kube_dir" build_kubernetes
  tool "kwok v$KWOK_VERSION" "$kwok_dir" build_kwok
fi
if wanted checkers; then
  tool "actionlint v$ACTIONLINT_VERSION" "$actionlint_dir" build_actionlint
  tool "promtool ($PROMETHEUS_MODULE)" "$promtool_dir" build_promtool
  tool "aws-lambda-rie ($LAMBDA_RIE_MODULE)" "$rie_dir" build_rie
  if own=$(command -v wrk); then
    echo "tools: using your wrk at $own"
  else
    command -v apt-get > /dev/null || {
      echo "make tools needs wrk for the benchmarks' tests; install it (apt-get install wrk, brew install wrk)" >&2
      exit 1
    }
    tool "wrk (Debian's package)" "$wrk_dir" fetch_wrk
  fi
fi
