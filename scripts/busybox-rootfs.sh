#!/usr/bin/env bash
# Makes a minimal busybox root filesystem offline, from Debian's busybox-static, and writes it
# as a reproducible tarball: scripts/busybox-rootfs.sh [--arch ARCH] OUT.tar
# --dir writes the tree into OUT (a directory, made if missing) instead of a tarball; the test
# helper make_busybox_rootfs() builds its runtime fixture that way, so there is one busybox root.
# --arch (a Debian architecture, e.g. arm64) takes busybox from busybox-static:ARCH's .deb, which
# scripts/setup.sh downloads into /var/cache/kiste-test (KISTE_TEST_CACHE); the applet links are
# the host busybox's (the same Debian version).
set -euo pipefail
arch=
as_dir=
while [ $# -gt 1 ]; do
  case $1 in
    --arch) arch=${2:?--arch needs an architecture}; shift 2 ;;
    --dir) as_dir=1; shift ;;
    *) break ;;
  esac
done
out=${1:?usage: busybox-rootfs.sh [--arch ARCH] [--dir] OUT}
bb=/bin/busybox
[ -x "$bb" ] || { echo "busybox-rootfs: $bb missing (apt-get install busybox-static)" >&2; exit 1; }
file -L "$bb" 2>/dev/null | grep -q 'statically linked' || ldd "$bb" 2>&1 | grep -q 'not a dynamic' || {
  echo "busybox-rootfs: $bb is not static (install busybox-static)" >&2; exit 1; }
deb_dir=$(mktemp -d)
if [ -n "$as_dir" ]; then
  mkdir -p "$out"
  dir=$out
  trap 'rm -rf "$deb_dir"' EXIT
else
  dir=$(mktemp -d)
  trap 'rm -rf "$dir" "$deb_dir"' EXIT
fi
src=$bb
if [ -n "$arch" ] && [ "$arch" != "$(dpkg --print-architecture)" ]; then
  cache=${KISTE_TEST_CACHE:-/var/cache/kiste-test}
  debs=("$cache"/busybox-static_*_"$arch".deb)
  [ -f "${debs[0]}" ] || {
    echo "busybox-rootfs: no busybox-static_*_$arch.deb in $cache (run scripts/setup.sh)" >&2; exit 1; }
  dpkg-deb -x "${debs[0]}" "$deb_dir"
  src=$deb_dir/bin/busybox
fi
mkdir -p "$dir"/{bin,sbin,usr/bin,usr/sbin,etc,root,tmp,proc,sys,dev,home,var/tmp}
chmod 1777 "$dir/tmp" "$dir/var/tmp"
cp "$src" "$dir/bin/busybox"
# One relative link per applet (usr/bin/wget -> ../../bin/busybox), made by one perl process
# (perl-base is essential on Debian): a few processes per applet took minutes in the TCG guest.
"$bb" --list-full | perl -e '
  my $dir = shift;
  while (my $applet = <STDIN>) {
    chomp $applet;
    next if $applet eq "bin/busybox";
    my $up = "../" x ($applet =~ tr{/}{});
    unlink "$dir/$applet";
    symlink("${up}bin/busybox", "$dir/$applet") or die "busybox-rootfs: link $applet: $!\n";
  }' "$dir"
cat >"$dir/etc/passwd" <<'PW'
root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
PW
cat >"$dir/etc/group" <<'GR'
root:x:0:
daemon:x:1:
nogroup:x:65534:
GR
echo 'hosts: files dns' >"$dir/etc/nsswitch.conf"
[ -z "$as_dir" ] || exit 0
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 --format=pax \
  --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime \
  -C "$dir" -cf "$out" .
