#!/usr/bin/env bash
# Installs etcd builds from Debian's archive next to (never over) the system's etcd, one directory
# per upstream version: $FAULTLINE_ETCD_ROOT (default /var/lib/faultline/etcd)/VERSION/usr/bin/etcd.
# The lab runs them with `faultline lab up --etcd-version VERSION`. Arguments are suite names
# (bookworm, trixie, sid); default: all three. `faultline etcd install` does the same once
# faultline is built; this script exists so install-deps.sh can run before the build.
# apt runs with a private sources list, lists and cache under ROOT/.apt, so the system's apt
# configuration and state are untouched.
set -euo pipefail
root="${FAULTLINE_ETCD_ROOT:-/var/lib/faultline/etcd}"
suites=("$@")
[ ${#suites[@]} -gt 0 ] || suites=(bookworm trixie sid)
mirror="$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)"
mirror="${mirror:-http://deb.debian.org/debian}"
apt="$root/.apt"
mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial" "$apt/download"
: > "$apt/sources.list"
for s in "${suites[@]}"; do
  echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror $s main" >> "$apt/sources.list"
done
opts=(-o "Dir::Etc::sourcelist=$apt/sources.list" -o Dir::Etc::sourceparts=/dev/null
      -o "Dir::State::Lists=$apt/lists" -o "Dir::Cache=$apt/cache"
      -o "Dir::Cache::archives=$apt/cache/archives" -o APT::Sandbox::User=root -q)
apt-get "${opts[@]}" update >/dev/null
for s in "${suites[@]}"; do
  deb_version="$(apt-cache "${opts[@]}" madison etcd-server | awk -v s="$s/" '$0 ~ s {print $3; exit}')"
  if [ -z "$deb_version" ]; then
    echo "install-etcd.sh: suite $s serves no etcd-server" >&2
    exit 1
  fi
  version="${deb_version%%-*}"
  if [ -x "$root/$version/usr/bin/etcd" ]; then
    echo "etcd $version ($s) already in $root/$version"
    continue
  fi
  rm -rf "$apt/download"/* "$root/.tmp-$version"
  (cd "$apt/download" && apt-get "${opts[@]}" download "etcd-server=$deb_version" >/dev/null)
  dpkg -x "$apt/download"/etcd-server_*.deb "$root/.tmp-$version"
  got="$("$root/.tmp-$version/usr/bin/etcd" --version | awk '/^etcd Version:/ {print $3}')"
  if [ "$got" != "$version" ]; then
    echo "install-etcd.sh: $s's etcd-server $deb_version says it is etcd '$got', not $version" >&2
    exit 1
  fi
  printf '{"version":"%s","suite":"%s","package":"etcd-server=%s"}\n' "$version" "$s" "$deb_version" \
    > "$root/.tmp-$version/faultline-etcd.json"
  mv "$root/.tmp-$version" "$root/$version"
  echo "etcd $version ($s, etcd-server $deb_version) in $root/$version"
done
