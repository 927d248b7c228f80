#!/bin/busybox sh
# /init of the lab VM's initramfs: mount the host's / (read-only, 9p) under a tmpfs
# overlay and switch_root into it; scripts/lab-guest.sh then runs as PID 1.
# Kernel parameters that are not the kernel's own arrive here as environment variables:
# rrl_repo (the repository path, shared read-write at the same path).
/bin/busybox mkdir -p /proc /sys /dev /lower /upper /newroot
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev

fail() {
  echo "lab-init: $*"
  echo "@@RRL-LAB-EXIT 125@@"
  poweroff -f
  sleep 5
}

for m in $(cat /mod/order); do
  insmod "/mod/$m" 2>/dev/null || grep -q "^${m%.ko} " /proc/modules || echo "lab-init: insmod $m failed"
done
mount -t 9p -o trans=virtio,version=9p2000.L,ro,cache=loose,msize=512000 hostroot /lower ||
  fail "cannot mount the host's root over 9p"
mount -t tmpfs -o mode=0755 tmpfs /upper || fail "cannot mount the overlay's tmpfs"
mkdir -p /upper/data /upper/work
mount -t overlay overlay -o lowerdir=/lower,upperdir=/upper/data,workdir=/upper/work /newroot ||
  fail "cannot mount the overlay root"
[ -f "/newroot$rrl_repo/scripts/lab-guest.sh" ] || fail "no $rrl_repo/scripts/lab-guest.sh in the guest"
mount --move /proc /newroot/proc
mount --move /sys /newroot/sys
mount --move /dev /newroot/dev
exec switch_root /newroot /bin/bash "$rrl_repo/scripts/lab-guest.sh"
