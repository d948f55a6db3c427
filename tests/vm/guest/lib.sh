# shellcheck shell=bash
# Sourced by the guest scripts. The host talks to the guest over three virtio-serial ports:
# kiste.out and kiste.err carry the command's stdout and stderr, kiste.ctl carries one event per
# line ("started", "exit N", "fail REASON") and nothing else. Kernel and systemd messages go to
# the serial console, which the host keeps apart.

# Prints the device of the virtio-serial port named $1.
kvm_port() {
  local d
  for d in /sys/class/virtio-ports/*; do
    if [ "$(cat "$d/name" 2>/dev/null)" = "$1" ]; then
      echo "/dev/${d##*/}"
      return 0
    fi
  done
  echo "kiste-vm: no virtio-serial port named $1" >&2
  return 1
}

# Sends one event line to the host. A write to a virtio-serial port returns only after the host
# took the data, so everything the command wrote before has reached the host already.
kvm_report() {
  local p
  p=$(kvm_port kiste.ctl) && echo "$*" >"$p"
}
