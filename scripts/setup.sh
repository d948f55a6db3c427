#!/usr/bin/env bash
# Installs everything kiste needs to build and test, from Debian's archive only. Idempotent.
set -euo pipefail
if [ "$(id -u)" -ne 0 ]; then
  echo "setup: run as root (it installs Debian packages)" >&2
  exit 1
fi
build_deps=(cmake ninja-build pkg-config g++ ccache lld
  libarchive-dev libssl-dev nlohmann-json3-dev libcurl4-openssl-dev libseccomp-dev
  libgtest-dev libgmock-dev libcli11-dev libfmt-dev libzstd-dev zlib1g-dev libcap-dev
  libsystemd-dev  # sd-bus headers only: libsystemd is dlopen'ed by the systemd cgroup manager
  libsodium-dev  # scrypt + secretbox for cosign-format encrypted private keys (trust/)
  libmnl-dev libnftables-dev)  # rtnetlink and nftables for container networks (dlopen'ed too)
# Real peers and fixtures the tests use: a busybox made offline, the CNCF registry, and the
# OCI tools that check what kiste writes.
test_deps=(busybox-static docker-registry skopeo umoci oci-image-tool apache2-utils openssl
  time tar gzip zstd iproute2 procps hyperfine curl python3
  gnupg gpgv  # GPG simple signing: gpgv checks signedBy policies, gpg makes keys in the tests
  python3-nacl  # an independent reader/writer of cosign's encrypted key format (tests/e2e/cosign_key.py)
  runc crun buildah  # runc, crun: peers for bench/run_latency.sh; buildah: builder interop
  podman  # drives kiste-runc as its OCI runtime (tests/e2e/oci_podman_e2e_test.cpp, bench/oci.sh)
  containerd  # ctr + its runc shim drive kiste-runc (tests/e2e/oci_containerd_e2e_test.cpp, bench/oci.sh)
  docker.io  # dockerd --add-runtime kiste=kiste-runc (tests/e2e/oci_docker_e2e_test.cpp, own netns)
  qemu-system-x86 kmod  # the VM stage (tests/vm): qemu + virtiofsd; depmod for the guest kernel
  clang-19 libclang-rt-19-dev  # the libFuzzer build (fuzz/run.sh): clang-14's <expected> fails
  qemu-user-static binfmt-support  # multi-platform tests: arm64 RUN steps under qemu-user
  uidmap strace passt  # rootless: newuidmap/newgidmap, strace (which setuid programs run), pasta
  iperf3 jq)  # bench/network.sh: TCP throughput through a published port (jq reads its JSON)
# The arm64 busybox base of the multi-platform tests comes from Debian's arm64 archive.
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
  dpkg --add-architecture arm64
  arm64_added=1
fi
missing=()
for p in "${build_deps[@]}" "${test_deps[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "==> installing dependencies (Debian packages): ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # docker.io, containerd and podman come as test tools, not services: their daemons must not
  # start on install (dockerd would add docker0 and iptables rules on the host's real network);
  # the tests start their own, in namespaces of their own. policy-rc.d (exit 101) tells the
  # packages' scripts not to start anything while they install.
  policy=/usr/sbin/policy-rc.d
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    trap 'rm -f "$policy"' EXIT
  fi
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  for p in "${missing[@]}"; do
    case "$p" in
    docker.io) units="docker.socket docker.service" ;;
    containerd) units="containerd.service" ;;
    *) continue ;;
    esac
    if [ -d /run/systemd/system ]; then
      echo "==> $p: installed for the tests only; its units are disabled (systemctl enable them to use it)"
      # shellcheck disable=SC2086
      systemctl disable --now $units >/dev/null 2>&1 || true
    fi
  done
else
  echo "==> dependencies: all installed"
fi

# The arm64 busybox-static .deb, kept outside the repo (tests unpack it with dpkg-deb -x).
cache=/var/cache/kiste-test
if ! ls "$cache"/busybox-static_*_arm64.deb >/dev/null 2>&1; then
  echo "==> downloading busybox-static:arm64 into $cache"
  [ -n "${arm64_added:-}" ] && [ ${#missing[@]} -eq 0 ] && apt-get update -qq
  mkdir -p "$cache"
  (cd "$cache" && apt-get download -qq busybox-static:arm64 2>/dev/null) ||
    { apt-get update -qq && (cd "$cache" && apt-get download -qq busybox-static:arm64); }
fi
# qemu-user-static's handlers (fix-binary flag) in binfmt_misc, which is not mounted at boot
# here. kiste itself never registers them: it names what is missing.
if [ ! -e /proc/sys/fs/binfmt_misc/register ]; then
  mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
fi
if [ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
  update-binfmts --enable qemu-aarch64
fi
