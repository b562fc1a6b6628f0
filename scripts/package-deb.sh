#!/usr/bin/env bash
# Builds the Debian package with Tauri's bundler into target/release/bundle/deb/.
# The Tauri CLI comes from npm as a prebuilt binary (installed under target/tools/).
set -euo pipefail
cd "$(dirname "$0")/.."
CLAWPAIR_WITH_TEST_TOOLS=0 scripts/install-deps.sh
export PATH="$HOME/.cargo/bin:$PATH"

if ! command -v npm >/dev/null 2>&1; then
  echo "==> installing Node.js and npm (for the Tauri CLI)"
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends nodejs npm
fi

tools=target/tools
cli="$tools/node_modules/.bin/tauri"
if [ ! -x "$cli" ]; then
  echo "==> installing the Tauri CLI from npm"
  mkdir -p "$tools"
  npm install --prefix "$tools" --no-save --no-audit --no-fund --loglevel=error "@tauri-apps/cli@^2"
fi

echo "==> building the release binary and the .deb"
"$cli" build --bundles deb --ci
ls -1 target/release/bundle/deb/*.deb
