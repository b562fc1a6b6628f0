#!/usr/bin/env bash
# A check of seconds that scripts/test.sh runs before the long build: every program the suite
# runs (scripts/test-programs.txt) is on PATH, and every program a test starts by name is on
# that list. Fails with the missing program and the package that provides it; a test that
# needs a program is never left to find out for itself, or to be skipped for lack of it.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
list=scripts/test-programs.txt

declare -A listed=()
problems=()
while read -r program package _; do
  case "$program" in "" | "#"*) continue ;; esac
  listed[$program]=1
  [ "$package" != - ] || continue
  if [[ "$package" == rustup-toolchain:* ]]; then
    toolchain=${package#rustup-toolchain:}
    rustup run "$toolchain" rustc --version >/dev/null 2>&1 && continue
    problems+=("the $toolchain Rust toolchain is not installed (rustup toolchain install $toolchain --profile minimal; scripts/install-deps.sh does)")
    continue
  fi
  if [[ "$package" == npm:* ]]; then
    [ -x "target/tools/$program/node_modules/.bin/$program" ] && continue
    problems+=("$program is not installed under target/tools/$program (npm install --prefix target/tools/$program ${package#npm:}; scripts/install-deps.sh does)")
    continue
  fi
  command -v "$program" >/dev/null 2>&1 && continue
  case "$package" in
    rustup:*) how="rustup component add ${package#rustup:}" ;;
    rustup) how="install Rust with rustup (scripts/install-deps.sh does)" ;;
    cargo:*) how="cargo install ${package#cargo:} --locked" ;;
    *)
      if dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
        how="installed but the program is gone: apt-get install --reinstall $package"
      else
        how="apt-get install $package"
      fi
      ;;
  esac
  problems+=("$program is not on PATH (package $package: $how)")
done <"$list"

# Programs the code starts by a literal name must be on the list, or a fresh machine lacks them.
while read -r program; do
  [ -n "${listed[$program]:-}" ] || problems+=("$program is started by the code (Command::new) but $list does not name it, so scripts/install-deps.sh never installs it")
done < <(grep -rhoE 'Command::new\("[A-Za-z0-9_.+-]+"\)' tests src-tauri crates | sed -E 's/Command::new\("(.*)"\)/\1/' | sort -u)

if [ ${#problems[@]} -gt 0 ]; then
  printf 'check-programs: %s\n' "${problems[@]}" >&2
  exit 1
fi
echo "all ${#listed[@]} programs the suite runs are installed"
