#!/usr/bin/env bash
# Stages the runtime image's whole file system from a built `gha-auth`: the binary, the shared
# libraries it links and the dynamic loader (found with ldd), the CA bundle, a passwd/group entry
# for the non-root user 10001 and the mount point /tmp in OUT/rootfs, and the empty data volume in
# OUT/volume (the Containerfile gives it to the user). The Containerfile's runtime stage copies
# them as they are, so the image builds from these files alone (no registry).
#
#   deploy/container/stage.sh [BINARY] [OUT]
#       BINARY  default target/release/gha-auth
#       OUT     default target/container (a build context)
#
# Then: buildah build --build-arg ROOTFS=prebuilt --format docker -f deploy/container/Containerfile OUT
set -euo pipefail

BINARY="${1:-target/release/gha-auth}"
OUT="${2:-target/container}"
CA_BUNDLE="${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}"
UID_GID=10001

die() { printf 'stage.sh: %s\n' "$*" >&2; exit 1; }
[[ -x "$BINARY" ]] || die "no executable at $BINARY (cargo build --release -p gha-auth-server)"
[[ -s "$CA_BUNDLE" ]] || die "no CA bundle at $CA_BUNDLE (install ca-certificates or set CA_BUNDLE)"
command -v ldd >/dev/null || die "ldd is needed"

ROOTFS="$OUT/rootfs"
rm -rf "$ROOTFS" "$OUT/volume"
mkdir -p "$ROOTFS/usr/local/bin" "$ROOTFS/etc/ssl/certs" "$ROOTFS/tmp" "$OUT/volume"

# The binary without its symbol table and debug sections (27 MB -> 22 MB; the release profile
# keeps them). Panics still print their message and location.
cp "$BINARY" "$ROOTFS/usr/local/bin/gha-auth"
if command -v strip >/dev/null; then strip "$ROOTFS/usr/local/bin/gha-auth"; fi

# Every library ldd resolves, at the path the binary asks for, plus the loader named in the ELF
# interpreter (e.g. /lib64/ld-linux-x86-64.so.2). `cp -L` copies the file a symlink points to.
libs="$(ldd "$BINARY")" || die "ldd failed: a static binary needs no libraries; stage it by hand"
while read -r path; do
  [[ -n "$path" ]] || continue
  mkdir -p "$ROOTFS$(dirname "$path")"
  cp -L "$path" "$ROOTFS$path"
done < <(awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}' <<<"$libs")
[[ -n "$(find "$ROOTFS" -name 'ld-linux*' -print -quit)" ]] || die "the dynamic loader was not found in: $libs"

cp -L "$CA_BUNDLE" "$ROOTFS/etc/ssl/certs/ca-certificates.crt"
printf 'gha-auth:x:%s:%s:gha-auth:/data:/nonexistent\n' "$UID_GID" "$UID_GID" >"$ROOTFS/etc/passwd"
printf 'gha-auth:x:%s:\n' "$UID_GID" >"$ROOTFS/etc/group"
chmod 1777 "$ROOTFS/tmp"
chmod 0755 "$ROOTFS/usr/local/bin/gha-auth"

echo "staged $(du -sh "$ROOTFS" | cut -f1) in $ROOTFS:"
(cd "$ROOTFS" && find . -type f | sort | sed 's/^\./  /')
