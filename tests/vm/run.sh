#!/usr/bin/env bash
# Boots a pure cgroup v2 guest (Debian's cloud kernel, qemu TCG) whose root is this host's own /
# (virtiofs, read-only, under a tmpfs overlay), runs one command in it as root, powers it off and
# exits with the command's status. See tests/vm/README.md.
#
# usage: run.sh [options] -- CMD [ARG…]
#   --no-systemd        boot a plain init script as PID 1 instead of systemd
#   --out DIR           share host directory DIR read-write at the same path in the guest
#                       (test reports land there); created if missing
#   --env NAME[=VALUE]  pass NAME (the host's value, or VALUE) to the command; repeatable.
#                       PATH, LANG, LC_ALL and every KISTE_* and GTEST_* variable pass anyway.
#   --timeout S         kill the guest after S seconds in all (default $KISTE_VM_TIMEOUT or 600)
#   --boot-timeout S    kill the guest if the command has not started after S seconds (120)
#   --console           stream the guest's serial console (kernel, systemd) to stderr
#   --console-log FILE  keep the serial console in FILE
#   -v, --verbose       print one timing line (prepare, boot, command) to stderr at the end
#
# The command's stdout and stderr reach this script's stdout and stderr; kernel and systemd
# messages never do (they go to the console, shown on failure). Exit status: the command's; 124
# on a timeout; 125 when the harness fails (one line "kiste-vm: …" on stderr says why).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
cache_root=${KISTE_VM_CACHE:-/var/cache/kiste-vm}
qemu=qemu-system-x86_64
virtiofsd=/usr/lib/qemu/virtiofsd

die() {
  echo "kiste-vm: $*" >&2
  exit 125
}

orig_args=("$@")
mode=systemd out="" console="" console_log="" verbose=0
timeout=${KISTE_VM_TIMEOUT:-600} boot_timeout=120
env_names=() env_sets=()
while [ $# -gt 0 ]; do
  case "$1" in
  --no-systemd) mode=nosystemd ;;
  --out) out=${2:?--out needs a directory} && shift ;;
  --env)
    case "${2:?--env needs NAME or NAME=VALUE}" in
    *=*) env_sets+=("$2") ;;
    *) env_names+=("$2") ;;
    esac
    shift
    ;;
  --timeout) timeout=${2:?} && shift ;;
  --boot-timeout) boot_timeout=${2:?} && shift ;;
  --console) console=1 ;;
  --console-log) console_log=${2:?} && shift ;;
  -v | --verbose) verbose=1 ;;
  --) shift && break ;;
  *) die "usage: run.sh [--no-systemd] [--out DIR] [--env NAME[=VALUE]] [--timeout S] [--boot-timeout S] [--console] [--console-log FILE] [-v] -- CMD [ARG…]" ;;
  esac
  shift
done
[ $# -gt 0 ] || die "no command given (run.sh [options] -- CMD [ARG…])"
[[ "$timeout" =~ ^[0-9]+$ && "$boot_timeout" =~ ^[0-9]+$ ]] || die "timeouts are whole seconds"

# Microseconds since the epoch, and a duration in seconds with one decimal.
now_us() { echo "${EPOCHREALTIME/./}"; }
secs() { printf '%d.%d' $(($1 / 1000000)) $(($1 % 1000000 / 100000)); }

# ---- outer half: checks, kernel and initramfs, then a private mount and PID namespace --------
if [ -z "${KVM_INNER:-}" ]; then
  [ "$(id -u)" -eq 0 ] || die "needs root (virtiofsd, mounts)"
  command -v "$qemu" >/dev/null || die "\`$qemu\` not found: install qemu-system-x86 (scripts/setup.sh)"
  [ -x "$virtiofsd" ] || die "\`$virtiofsd\` not found: install qemu-system-common (scripts/setup.sh)"
  command -v busybox >/dev/null || die "\`busybox\` not found: install busybox-static (scripts/setup.sh)"
  t0=$(now_us)
  kdir=$("$here/prepare.sh") || exit 125 # prepare.sh said why, on one line
  mkdir -p "$cache_root/run"
  if [ -n "$out" ]; then
    mkdir -p "$out" || die "create \`$out\`: failed"
  fi
  export KVM_INNER=1 KVM_KDIR=$kdir KVM_PREPARE_US=$(($(now_us) - t0))
  # --kill-child: if this process dies (ctest's timeout, ^C), the namespace's init is killed and
  # with it qemu and virtiofsd; the private mounts vanish with the namespace.
  exec unshare --mount --propagation private --pid --fork --kill-child -- "$0" "${orig_args[@]}"
fi

# ---- inner half: PID 1 of a private PID namespace, in a private mount namespace ---------------
[ $$ -eq 1 ] || die "internal: the inner half must run as PID 1 of its own namespace"
if [ -n "$out" ]; then
  out=$(cd "$out" && pwd)
fi
cwd=$(pwd)

# Everything of this run lives on one private tmpfs, gone with the namespace.
run=$cache_root/run
mount -t tmpfs -o mode=0700,size=256m kiste-vm "$run" || die "mount tmpfs on \`$run\`: failed"

# The guest's root: this host's root filesystem, read-only, plus (if they live on other
# filesystems) the ones holding the kiste tree, the working directory and the kernel's modules.
mkdir "$run/root"
mount --bind / "$run/root" && mount -o remount,bind,ro "$run/root" ||
  die "bind \`/\` read-only on \`$run/root\`: failed"
for p in "$repo" "$cwd" "$KVM_KDIR"; do
  m=$(findmnt -n -o TARGET -T "$p")
  [ "$m" = / ] || mountpoint -q "$run/root$m" && continue
  mount --rbind "$m" "$run/root$m" || die "bind \`$m\` on \`$run/root$m\`: failed"
  findmnt -R -n -o TARGET "$run/root$m" | while read -r sub; do
    mount -o remount,bind,ro "$sub" || die "remount \`$sub\` read-only: failed"
  done
done

# virtiofsd keeps a pid file under /run/virtiofsd; a private /run keeps it off the host. A
# /proc of this PID namespace shows only this run's processes.
mount -t tmpfs -o mode=0755,size=4m kiste-vm-run /run || die "mount tmpfs on \`/run\`: failed"
mount -t proc -o nosuid,nodev,noexec proc /proc || die "mount proc on \`/proc\`: failed"

pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT

start_virtiofsd() { # tag source cache
  "$virtiofsd" --socket-path="$run/$1.sock" -o source="$2" -o cache="$3" -o sandbox=namespace \
    >"$run/virtiofsd-$1.log" 2>&1 &
  pids+=($!)
}
start_virtiofsd kiste-root "$run/root" always
[ -z "$out" ] || start_virtiofsd kiste-out "$out" auto

# The per-run part of the initramfs: configuration, the command, the guest scripts.
shq() { printf "'%s'" "${1//\'/\'\\\'\'}"; }
stage=$run/stage/kiste-vm
mkdir -p "$stage"
cp "$here"/guest/* "$stage/"
{
  echo "KVM_MODE=$(shq "$mode")"
  echo "KVM_MODULES=$(shq "$KVM_KDIR/layer/lib/modules/$(cat "$KVM_KDIR/kver")")"
  echo "KVM_OUT=$(shq "$out")"
  echo "KVM_KEEP=$(shq "$repo $cwd")"
} >"$stage/config"
vars=("HOME=/root" "KISTE_VM=$mode")
while IFS= read -r name; do
  vars+=("$name=${!name}")
done < <(compgen -e | grep -E '^(PATH|LANG|LC_ALL|KISTE_.*|GTEST_.*)$' | grep -v '^KISTE_VM$')
for name in "${env_names[@]}"; do
  [ -n "${!name+x}" ] && vars+=("$name=${!name}")
done
vars+=("${env_sets[@]}")
{
  echo '#!/bin/bash'
  echo '# Generated by tests/vm/run.sh: the command, its working directory and environment.'
  echo '. /run/kiste-vm/lib.sh'
  echo 'exec >"$(kvm_port kiste.out)" 2>"$(kvm_port kiste.err)" </dev/null || exit 125'
  echo 'kvm_report started'
  printf 'cd -- %q || exit 125\n' "$cwd"
  printf 'exec env -i --'
  printf ' %q' "${vars[@]}" "$@"
  echo
} >"$stage/cmd.sh"
(cd "$run/stage" && find . | busybox cpio -o -H newc 2>/dev/null) >"$run/stage.cpio"
cat "$KVM_KDIR/initrd.img" "$run/stage.cpio" >"$run/initrd"

cmdline="console=ttyS0 panic=-1 mitigations=off cgroup_no_v1=all"
if [ "$mode" = systemd ]; then
  # Pure cgroup v2, straight to the test unit; no fstab (the root is already there), no
  # partition discovery, nothing that waits for hardware this guest does not have.
  cmdline+=" systemd.unified_cgroup_hierarchy=1 systemd.unit=kiste-vm-test.service fstab=no"
  cmdline+=" systemd.gpt_auto=0 systemd.firstboot=0 systemd.show_status=error"
  # Under TCG every unit costs seconds; these do nothing the tests look at (binfmt, debugfs,
  # module preloads, utmp, the journal's disk copy, timers, time sync).
  for unit in systemd-timesyncd.service systemd-pstore.service systemd-binfmt.service \
    proc-sys-fs-binfmt_misc.automount systemd-sysusers.service systemd-modules-load.service \
    kmod-static-nodes.service modprobe@loop.service modprobe@dm_mod.service \
    modprobe@configfs.service modprobe@fuse.service modprobe@drm.service \
    modprobe@efi_pstore.service sys-kernel-tracing.mount sys-kernel-debug.mount \
    sys-kernel-config.mount sys-fs-fuse-connections.mount dev-hugepages.mount \
    systemd-random-seed.service systemd-journal-flush.service systemd-update-utmp.service \
    timers.target; do
    cmdline+=" systemd.mask=$unit"
  done
fi

# Console, command output and control events each have their own channel; the host's ends of
# out and err are cat processes writing to this script's own stdout and stderr.
if [ -n "$console" ]; then
  exec {console_fd}>&2
elif [ -n "$console_log" ]; then
  exec {console_fd}>"$console_log" || die "open \`$console_log\`: failed"
else
  exec {console_fd}>"$run/console.log"
fi
mkfifo "$run/con" "$run/out" "$run/err" "$run/ctl"
cat <"$run/con" >&"$console_fd" &
con_cat=$!
cat <"$run/out" &
out_cat=$!
cat <"$run/err" >&2 &
err_cat=$!
pids+=("$con_cat" "$out_cat" "$err_cat")
exec {ctl}<>"$run/ctl"

for tag in kiste-root ${out:+kiste-out}; do
  for _ in $(seq 100); do
    [ -S "$run/$tag.sock" ] && break
    sleep 0.05
  done
  [ -S "$run/$tag.sock" ] || die "start virtiofsd for \`$tag\`: $(tail -n1 "$run/virtiofsd-$tag.log")"
done

args=(-name kiste-vm -accel tcg -cpu max -smp 2 -m 2048
  -object memory-backend-memfd,id=mem,size=2048M,share=on -machine pc,memory-backend=mem
  -nodefaults -nographic -nic none -no-reboot
  -kernel "$KVM_KDIR/vmlinuz" -initrd "$run/initrd" -append "$cmdline"
  -chardev "file,id=con,path=$run/con" -serial chardev:con
  -chardev "socket,id=kiste-root,path=$run/kiste-root.sock"
  -device vhost-user-fs-pci,chardev=kiste-root,tag=kiste-root,queue-size=1024
  -device virtio-serial-pci,id=vser
  -chardev "file,id=out,path=$run/out" -device virtserialport,bus=vser.0,chardev=out,name=kiste.out
  -chardev "file,id=err,path=$run/err" -device virtserialport,bus=vser.0,chardev=err,name=kiste.err
  -chardev "file,id=ctl,path=$run/ctl" -device virtserialport,bus=vser.0,chardev=ctl,name=kiste.ctl)
if [ -n "$out" ]; then
  args+=(-chardev "socket,id=kiste-out,path=$run/kiste-out.sock"
    -device vhost-user-fs-pci,chardev=kiste-out,tag=kiste-out,queue-size=1024)
fi

t_boot=$(now_us)
(
  "$qemu" "${args[@]}" </dev/null >"$run/qemu.log" 2>&1 {ctl}>&- &
  echo "qemu-pid $!" >&"$ctl"
  wait $!
  echo "qemu-exit $?" >&"$ctl"
) &
pids+=($!)

# virtiofsd holds an fd for every guest inode it has looked up and cannot raise its fd limit
# beyond the hard limit it inherits: a guest that touches more files than that gets EMFILE.
virtiofsd_fds() {
  local p n max=0
  for p in /proc/[0-9]*; do
    [ "$(cat "$p/comm" 2>/dev/null)" = virtiofsd ] || continue
    n=$(ls "$p/fd" 2>/dev/null | wc -l)
    [ "$n" -le "$max" ] || max=$n
  done
  echo "$max"
}

console_tail() {
  [ -z "$console" ] || return 0
  exec {console_fd}>&-
  local log=${console_log:-$run/console.log}
  echo "kiste-vm: ---- last lines of the guest console ($mode) ----" >&2
  tail -n 40 "$log" | sed 's/\r$//' >&2
  if [ -s "$run/qemu.log" ]; then
    echo "kiste-vm: ---- qemu ----" >&2
    tail -n 10 "$run/qemu.log" >&2
  fi
  echo "kiste-vm: ---- end ----" >&2
}

status="" qemu_pid="" t_started="" qemu_status=""
while [ -z "$qemu_status" ]; do
  if [ -z "$t_started" ]; then
    deadline=$((t_boot + boot_timeout * 1000000)) what="start the command within $boot_timeout s"
  elif [ -z "$status" ]; then
    deadline=$((t_boot + timeout * 1000000)) what="finish within $timeout s"
  else # the command is done; the guest is powering off
    deadline=$((t_boot + (timeout + 30) * 1000000)) what="power off"
  fi
  left=$((deadline - $(now_us)))
  event="" arg=""
  if [ "$left" -le 0 ] || ! read -r -t "$(secs "$left")" -u "$ctl" event arg; then
    [ -z "$qemu_pid" ] || kill -KILL "$qemu_pid" 2>/dev/null || true
    if [ -z "$t_started" ] || [ -n "$status" ]; then # a hung command is no boot problem
      console_tail
    fi
    echo "kiste-vm: timeout: the guest did not $what; killed qemu" >&2
    exit 124
  fi
  case "$event" in
  qemu-pid) qemu_pid=$arg ;;
  started) t_started=$(now_us) ;;
  exit)
    status=$arg t_done=$(now_us)
    fds=$(virtiofsd_fds)
    ;;
  fail)
    kill -KILL "$qemu_pid" 2>/dev/null || true
    console_tail
    die "guest: $arg"
    ;;
  qemu-exit) qemu_status=$arg ;;
  esac
done
if [ -z "$status" ]; then
  console_tail
  die "qemu exited (status $qemu_status) before the command reported its exit status"
fi
wait "$out_cat" "$err_cat" "$con_cat" || true
if [ "$verbose" = 1 ]; then
  echo "kiste-vm: $mode: prepare $(secs "$KVM_PREPARE_US") s, boot to command $(secs $((t_started - t_boot))) s," \
    "command $(secs $((t_done - t_started))) s, power-off $(secs $(($(now_us) - t_done))) s," \
    "status $status; virtiofsd open files $fds of $(ulimit -n)" >&2
fi
exit "$status"
