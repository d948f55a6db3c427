#!/bin/bash
# PID 1 of the guest booted without systemd: mounts what an init must (cgroup2 at /sys/fs/cgroup,
# nothing else of cgroups), runs the command in the root cgroup, reports its status, powers off.
. /run/kiste-vm/lib.sh
mount -t proc -o nosuid,nodev,noexec proc /proc
mount -t sysfs -o nosuid,nodev,noexec sysfs /sys
mount -t cgroup2 -o nosuid,nodev,noexec,nsdelegate cgroup2 /sys/fs/cgroup
mkdir -p /dev/pts /dev/shm /dev/mqueue
mount -t devpts -o nosuid,noexec,gid=5,mode=620,ptmxmode=000 devpts /dev/pts
mount -t tmpfs -o nosuid,nodev,mode=1777 tmpfs /dev/shm
mount -t mqueue -o nosuid,nodev,noexec mqueue /dev/mqueue
hostname kiste-vm

/bin/bash /run/kiste-vm/cmd.sh &
wait $!
kvm_report "exit $?"
sync
exec /bin/busybox poweroff -f
