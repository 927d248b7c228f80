#!/usr/bin/env bash
# One-command setup: Deno, rdma-core, perftest and, where the host kernel cannot load
# rdma_rxe, the lab VM (QEMU, a Debian kernel with rdma_rxe, an initramfs).
# Idempotent: a second run checks and prints one line. Everything it fetches lives in
# .lab/ (ignored by git). It never edits the system's apt sources.
#
# Environment:
#   RRL_LAB_MODE=auto|vm|native   force the lab mode (default auto: native when the host
#                                 kernel can load rdma_rxe, else the lab VM)
#   RRL_KERNEL_REFRESH=1          look for a newer lab kernel even if one is cached
#   RRL_SETUP_VERBOSE=1           print every step even when nothing changes
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
lab="$repo/.lab"
deno_version=$(tr -d ' \n' <"$repo/.deno-version")
mode=${RRL_LAB_MODE:-auto}
changed=0

say() { printf 'setup: %s\n' "$*" >&2; }
die() {
  printf 'setup: error: %s\n' "$*" >&2
  exit 1
}
step() {
  changed=1
  say "$*"
}

case "$mode" in auto | vm | native) ;; *) die "RRL_LAB_MODE=$mode is not one of auto, vm, native" ;; esac
case "$(uname -m)" in x86_64) ;; *) die "this project needs an x86_64 machine (found $(uname -m))" ;; esac
mkdir -p "$lab"

# ---- Deno ----------------------------------------------------------------------------
find_deno() {
  if command -v deno >/dev/null 2>&1; then
    command -v deno
  elif [ -x "$lab/deno/node_modules/.bin/deno" ]; then
    echo "$lab/deno/node_modules/.bin/deno"
  fi
}
deno_bin=$(find_deno)
if [ -z "$deno_bin" ]; then
  command -v npm >/dev/null 2>&1 ||
    die "Deno is missing and so is npm: install Node.js + npm (apt-get install npm) or Deno $deno_version"
  step "installing Deno $deno_version from npm into .lab/deno"
  npm install --silent --no-audit --no-fund --prefix "$lab/deno" "deno@$deno_version" >/dev/null ||
    die "npm install deno@$deno_version failed: is the npm registry reachable?"
  deno_bin="$lab/deno/node_modules/.bin/deno"
fi
have_deno=$("$deno_bin" --version | head -n 1 | awk '{print $2}')
if [ "$have_deno" != "$deno_version" ]; then
  case "$have_deno" in
  "${deno_version%.*}".*) say "warning: Deno $have_deno found, $deno_version is the tested version" ;;
  *) die "Deno $have_deno found, this project needs $deno_version: run it as 'npx --yes deno@$deno_version task ...'" ;;
  esac
fi

# ---- Debian packages -------------------------------------------------------------------
native_rxe() {
  [ -d /sys/module/rdma_rxe ] && return 0
  [ -r /proc/modules ] || return 1
  command -v modprobe >/dev/null 2>&1 && modprobe -n -q rdma_rxe 2>/dev/null
}
if [ "$mode" = auto ]; then
  if native_rxe; then mode=native; else mode=vm; fi
fi

packages=(rdma-core ibverbs-providers libibverbs1 libibverbs-dev ibverbs-utils perftest iproute2
  gcc libc6-dev libisal2 libffi8 util-linux)
[ "$mode" = vm ] && packages+=(qemu-system-x86 busybox-static kmod cpio xz-utils gzip)
[ "$mode" = native ] && packages+=(kmod iputils-ping)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  command -v apt-get >/dev/null 2>&1 ||
    die "missing packages ${missing[*]} and no apt-get here: install them with your package manager"
  [ "$(id -u)" = 0 ] ||
    die "missing packages ${missing[*]}: run this as root, or run 'sudo apt-get install ${missing[*]}' first"
  step "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get install -y -qq --no-install-recommends "${missing[@]}" >"$lab/apt-install.log" 2>&1; then
    apt-get update -qq >"$lab/apt-update.log" 2>&1 ||
      die "apt-get update failed: is Debian's package archive reachable? (see .lab/apt-update.log)"
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >"$lab/apt-install.log" 2>&1 ||
      die "apt-get install ${missing[*]} failed (see .lab/apt-install.log)"
  fi
fi

# ---- The lab kernel ----------------------------------------------------------------------
apt_private() { # run an apt command against .lab/apt's own sources, lists and cache
  local tool=$1
  shift
  "$tool" -o Dir::Etc::sourcelist="$lab/apt/sources.list" -o Dir::Etc::sourceparts=/dev/null \
    -o Dir::State::Lists="$lab/apt/lists" -o Dir::Cache="$lab/apt/cache" \
    -o Dir::State::status=/var/lib/dpkg/status -o APT::Sandbox::User=root "$@"
}

fetch_backports_kernel() { # prints the version it unpacked, or fails
  mkdir -p "$lab/apt/lists/partial" "$lab/apt/cache/archives/partial" "$lab/debs"
  echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie-backports main" \
    >"$lab/apt/sources.list"
  apt_private apt-get update -qq >"$lab/apt-kernel.log" 2>&1 || return 1
  local ver
  ver=$(apt_private apt-cache pkgnames linux-binary- 2>/dev/null |
    sed -n 's/^linux-binary-\([0-9][0-9.]*+deb[0-9]*\)-amd64$/\1/p' | sort -V | tail -n 1)
  [ -n "$ver" ] || return 1
  if [ -f "$lab/kernel/$ver-amd64/vmlinuz" ]; then echo "$ver-amd64" && return 0; fi
  (cd "$lab/debs" && apt_private apt-get download -qq "linux-binary-$ver-amd64" \
    "linux-modules-$ver-amd64" >>"$lab/apt-kernel.log" 2>&1) || return 1
  unpack_kernel "$ver-amd64" "$lab"/debs/linux-binary-"$ver"-amd64_*.deb \
    "$lab"/debs/linux-modules-"$ver"-amd64_*.deb
  echo "$ver-amd64"
}

fetch_bookworm_kernel() { # Debian 12's own kernel, from the system's sources
  local pkg
  pkg=$(apt-cache pkgnames linux-image-6.1.0- 2>/dev/null | grep -E '^linux-image-6\.1\.0-[0-9]+-amd64$' |
    sort -V | tail -n 1)
  [ -n "$pkg" ] || return 1
  if [ -f "$lab/kernel/${pkg#linux-image-}/vmlinuz" ]; then echo "${pkg#linux-image-}" && return 0; fi
  mkdir -p "$lab/debs"
  (cd "$lab/debs" && apt-get download -qq "$pkg" >>"$lab/apt-kernel.log" 2>&1) || return 1
  unpack_kernel "${pkg#linux-image-}" "$lab"/debs/"$pkg"_*.deb
  echo "${pkg#linux-image-}"
}

unpack_kernel() { # VERSION DEB... -> .lab/kernel/VERSION/{vmlinuz,lib/modules/VERSION}
  local ver=$1 tmp dst="$lab/kernel/$1"
  shift
  tmp=$(mktemp -d "$lab/unpack.XXXXXX")
  for deb in "$@"; do dpkg-deb -x "$deb" "$tmp"; done
  rm -rf "$dst"
  mkdir -p "$dst/lib/modules"
  local mods
  mods=$(find "$tmp" -type d -path "*/lib/modules/$ver" | head -n 1)
  [ -n "$mods" ] || die "no modules for $ver in the kernel package"
  mv "$mods" "$dst/lib/modules/$ver"
  if [ -f "$dst/lib/modules/$ver/vmlinuz" ]; then
    mv "$dst/lib/modules/$ver/vmlinuz" "$dst/vmlinuz"
  else
    mv "$(find "$tmp" -name "vmlinuz-$ver" | head -n 1)" "$dst/vmlinuz"
  fi
  rm -rf "$tmp"
  depmod -b "$dst" "$ver" 2>/dev/null
}

if [ "$mode" = vm ]; then
  kernel_env="$lab/kernel.env"
  want_suite=${RRL_KERNEL_SUITE:-}
  case "$want_suite" in "" | trixie-backports | bookworm) ;;
  *) die "RRL_KERNEL_SUITE=$want_suite is not trixie-backports or bookworm" ;;
  esac
  have_suite=$(sed -n 's/^KERNEL_SUITE=//p' "$kernel_env" 2>/dev/null || true)
  refetch=0
  [ -f "$kernel_env" ] || refetch=1
  [ -n "${RRL_KERNEL_REFRESH:-}" ] && refetch=1
  [ -n "$want_suite" ] && [ "$want_suite" != "$have_suite" ] && refetch=1
  record() { printf 'KERNEL_VERSION=%s\nKERNEL_SUITE=%s\nKERNEL_NETNS_RXE=%s\n' "$1" "$2" "$3" >"$kernel_env"; }
  if [ $refetch = 1 ]; then
    if [ "$want_suite" = bookworm ]; then
      step "fetching Debian 12's own kernel (RRL_KERNEL_SUITE=bookworm: namespace pairs will not work, loopback only)"
      ver=$(fetch_bookworm_kernel) || die "Debian 12's kernel could not be fetched (see .lab/apt-kernel.log)"
      record "$ver" bookworm no
    else
      step "fetching the newest Debian kernel from trixie-backports (Soft-RoCE pairs need Linux 7.1+)"
      if ver=$(fetch_backports_kernel); then
        record "$ver" trixie-backports yes
      else
        say "warning: trixie-backports could not be reached (see .lab/apt-kernel.log);" \
          "falling back to Debian 12's own 6.1 kernel: namespace pairs will NOT carry traffic" \
          "there, the lab will use the single-device loopback topology"
        ver=$(fetch_bookworm_kernel) || die "no Debian kernel could be fetched (see .lab/apt-kernel.log)"
        record "$ver" bookworm no
      fi
    fi
    rm -f "$lab"/debs/*.deb
    say "lab kernel $ver recorded in .lab/kernel.env"
  fi
  # shellcheck disable=SC1090
  . "$kernel_env"
  [ -f "$lab/kernel/$KERNEL_VERSION/vmlinuz" ] ||
    die "the lab kernel $KERNEL_VERSION is incomplete: remove .lab/kernel.env and run setup again"

  # ---- The initramfs -------------------------------------------------------------------
  initrd="$lab/initramfs-$KERNEL_VERSION.cpio.gz"
  stamp=$(cat "$repo/scripts/lab-init.sh" "$kernel_env" | sha256sum | cut -c1-16)
  if [ ! -f "$initrd" ] || [ "$(cat "$initrd.stamp" 2>/dev/null)" != "$stamp" ]; then
    step "building the lab initramfs for $KERNEL_VERSION"
    tmp=$(mktemp -d "$lab/initrd.XXXXXX")
    mkdir -p "$tmp/bin" "$tmp/mod"
    cp /bin/busybox "$tmp/bin/busybox"
    install -m 0755 "$repo/scripts/lab-init.sh" "$tmp/init"
    : >"$tmp/mod/order"
    for m in virtio_pci 9pnet_virtio 9p overlay; do # "not found": built into this kernel
      modprobe -d "$lab/kernel/$KERNEL_VERSION" -S "$KERNEL_VERSION" --show-depends "$m" 2>/dev/null |
        awk '$1 == "insmod" {print $2}' || true
    done | awk '!seen[$0]++' | while read -r ko; do
      name=$(basename "$ko")
      name=${name%.xz}
      name=${name%.zst}
      case "$ko" in
      *.xz) xz -dc "$ko" >"$tmp/mod/$name" ;;
      *.zst) zstd -qdc "$ko" >"$tmp/mod/$name" ;;
      *) cp "$ko" "$tmp/mod/$name" ;;
      esac
      echo "$name" >>"$tmp/mod/order"
    done
    (cd "$tmp" && find . | cpio -o -H newc --quiet | gzip -1) >"$initrd.part"
    mv "$initrd.part" "$initrd"
    echo "$stamp" >"$initrd.stamp"
    rm -rf "$tmp"
  fi
fi

# ---- Deno dependencies: cached on the host, the lab VM has no registry ----------------------
lock_sum=$(cat "$repo/deno.json" "$repo/deno.lock" 2>/dev/null | sha256sum | cut -c1-16)
if [ "$(cat "$lab/deno-deps.stamp" 2>/dev/null)" != "$lock_sum" ]; then
  step "caching the npm dependencies (deno install)"
  (cd "$repo" && "$deno_bin" install --frozen --quiet) ||
    die "deno install failed: is the npm registry reachable? (deno.lock pins every package)"
  echo "$lock_sum" >"$lab/deno-deps.stamp"
fi

echo "MODE=$mode" >"$lab/mode.env"
if [ "$changed" = 1 ] || [ -n "${RRL_SETUP_VERBOSE:-}" ]; then
  say "done: lab mode $mode${KERNEL_VERSION:+, kernel $KERNEL_VERSION}"
else
  say "ready (lab mode $mode${KERNEL_VERSION:+, kernel $KERNEL_VERSION})"
fi
