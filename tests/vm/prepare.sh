#!/usr/bin/env bash
# Fetches Debian's cloud kernel and builds the guest's initramfs, cached under
# /var/cache/kiste-vm/<kernel version>-<hash of the inputs>, so a second run rebuilds nothing.
# Prints the cache directory on stdout. Needs root (apt-get download, depmod) and apt access the
# first time.
#
# Cache directory:
#   vmlinuz      the kernel
#   initrd.img   busybox-static + /init (initramfs/init) + the virtio/virtiofs/overlay modules
#   layer/lib/modules/<kver>  the guest kernel's modules with depmod's indexes; the guest binds
#                them on its /lib/modules/<kver>, so modprobe there finds them
#   kver         the kernel release
#   ready        written last; a directory without it is never used
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
cache_root=${KISTE_VM_CACHE:-/var/cache/kiste-vm}
meta=linux-image-cloud-amd64
# Everything the initramfs needs to mount the root: virtio-pci, virtiofs (fuse), overlay, and the
# virtio-serial ports the harness talks over. modprobe --show-depends orders their dependencies.
modules=(virtio_pci virtio_console virtiofs overlay)

die() {
  echo "kiste-vm: prepare: $*" >&2
  exit 1
}

for tool in apt-get apt-cache dpkg-deb depmod modprobe busybox gzip sha256sum flock; do
  command -v "$tool" >/dev/null || die "\`$tool\` not found (run scripts/setup.sh)"
done
[ "$(id -u)" -eq 0 ] || die "needs root (apt-get download, depmod)"

# The metapackage's candidate names the versioned kernel package and its exact version:
#   Depends: linux-image-6.1.0-57-cloud-amd64 (= 6.1.192-3)
resolve_package() {
  apt-cache show --no-all-versions "$meta" 2>/dev/null |
    sed -n 's/^Depends: \(linux-image-[^ ,]*\) (= \([^)]*\)).*/\1 \2/p' | head -n1
}
resolved=$(resolve_package)
if [ -z "$resolved" ]; then
  # A fresh machine may have no package lists yet.
  apt-get update -qq >/dev/null 2>&1 || true
  resolved=$(resolve_package)
fi
[ -n "$resolved" ] || die "cannot resolve the kernel package behind \`$meta\` (no apt package lists?)"
read -r pkg ver <<<"$resolved"

hash=$(cat "$here/prepare.sh" "$here/initramfs/init" "$(command -v busybox)" |
  { sha256sum; echo "$pkg $ver ${modules[*]}"; } | sha256sum | cut -c1-12)
dir=$cache_root/$pkg-$ver-$hash

if [ -f "$dir/ready" ]; then
  echo "$dir"
  exit 0
fi

mkdir -p "$cache_root"
exec {lock}>"$cache_root/.lock"
flock "$lock"
if [ -f "$dir/ready" ]; then # another prepare finished while we waited
  echo "$dir"
  exit 0
fi

rm -rf "$cache_root"/.build.* # left by a prepare that was killed; we hold the lock
tmp=$(mktemp -d "$cache_root/.build.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
chmod 0755 "$tmp"

# The .deb is kept beside the builds (until the kernel version changes), so a change to the
# inputs rebuilds the initramfs without downloading again.
deb=$cache_root/debs/${pkg}_$ver.deb
if [ ! -f "$deb" ]; then
  # apt-get download wants a directory its _apt user can write (it warns otherwise).
  mkdir "$tmp/deb"
  id _apt >/dev/null 2>&1 && chown _apt "$tmp/deb"
  (cd "$tmp/deb" && apt-get download -q "$pkg=$ver" >/dev/null 2>"$tmp/download.log") ||
    die "apt-get download $pkg=$ver: $(tail -n1 "$tmp/download.log")"
  rm -rf "$cache_root/debs"
  mkdir -p "$cache_root/debs"
  mv "$tmp"/deb/*.deb "$deb"
  echo "kiste-vm: prepare: fetched $pkg $ver" >&2
fi
mkdir "$tmp/x"
dpkg-deb -x "$deb" "$tmp/x" || die "unpack \`$deb\` failed"
kver=$(ls "$tmp/x/lib/modules")
[ -n "$kver" ] && [ -f "$tmp/x/boot/vmlinuz-$kver" ] || die "unexpected layout in \`$pkg\`"

mkdir -p "$tmp/out/layer/lib/modules"
mv "$tmp/x/boot/vmlinuz-$kver" "$tmp/out/vmlinuz"
mv "$tmp/x/lib/modules/$kver" "$tmp/out/layer/lib/modules/$kver"
depmod -b "$tmp/out/layer" "$kver"
echo "$kver" >"$tmp/out/kver"

# The initramfs: /init, busybox-static with its applets as symlinks, the modules in load order.
ird=$tmp/initramfs
mkdir -p "$ird"/{bin,dev,proc,sys,lower,rw,new,modules}
cp "$(command -v busybox)" "$ird/bin/busybox"
for applet in sh mount umount mkdir cat cp insmod switch_root poweroff sleep ls echo; do
  ln -s busybox "$ird/bin/$applet"
done
install -m 0755 "$here/initramfs/init" "$ird/init"
for m in "${modules[@]}"; do
  modprobe -d "$tmp/out/layer" -S "$kver" --show-depends "$m" | awk '$1 == "insmod" { print $2 }'
done | awk '!seen[$0]++' | while read -r ko; do
  cp "$ko" "$ird/modules/"
  basename "$ko" >>"$ird/modules/load"
done
(cd "$ird" && find . | LC_ALL=C sort | busybox cpio -o -H newc 2>/dev/null) | gzip -6 >"$tmp/out/initrd.img"
# The harness appends a per-run archive; the kernel finds it only at a 4-byte aligned offset.
truncate -s %4 "$tmp/out/initrd.img"

touch "$tmp/out/ready"
mv "$tmp/out" "$dir"
# Drop builds for older kernels or inputs; `run` is the harness's (empty) mount point.
for old in "$cache_root"/*; do
  case "$old" in "$dir" | "$cache_root/run" | "$cache_root/debs") ;; *) rm -rf "$old" ;; esac
done
echo "kiste-vm: prepare: built \`$dir\`" >&2
echo "$dir"
