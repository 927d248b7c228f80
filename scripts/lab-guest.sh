#!/bin/bash
# PID 1 of the lab VM, after scripts/lab-init.sh switched into the host's root (an
# overlay: writes vanish at power-off, except under the repository, which is shared
# read-write at the same path). Brings the Soft-RoCE pair up, runs the command the
# runner left in $rrl_run/cmd.sh from the repository directory, prints the exit marker
# the runner waits for and powers off.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
rc=125

finish() {
  echo "@@RRL-LAB-EXIT $rc@@"
  echo "$rc" >"$rrl_run/exit" 2>/dev/null
  sync
  /bin/busybox poweroff -f 2>/dev/null || echo o >/proc/sysrq-trigger
  sleep 10
}
trap finish EXIT

mount -t tmpfs -o mode=0755 tmpfs /run
mkdir -p /dev/shm /dev/pts
mount -t tmpfs -o mode=1777 tmpfs /dev/shm
mount -t devpts devpts /dev/pts
mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 rrlrepo "$rrl_repo" || {
  echo "lab-guest: cannot mount the repository read-write at $rrl_repo"
  exit
}
[ -f "$rrl_run/cmd.sh" ] || {
  echo "lab-guest: no command file $rrl_run/cmd.sh"
  exit
}

# The kernel boots with one CPU online (maxcpus=1): it patches its own code (static keys)
# during boot, and under multi-threaded TCG another vCPU can run the half-patched code
# (an int3 oops). Bring the others online now that boot is done.
for cpu in /sys/devices/system/cpu/cpu[1-9]*/online; do
  [ -e "$cpu" ] && echo 1 >"$cpu" 2>/dev/null
done

kver=$(uname -r)
mkdir -p /lib/modules
ln -sfn "$rrl_repo/.lab/kernel/$kver/lib/modules/$kver" "/lib/modules/$kver"
ulimit -l unlimited
ulimit -n 65536
hostname rrl-lab
ip link set lo up
stty -F /dev/console -onlcr 2>/dev/null

# shellcheck disable=SC1091
. "$rrl_run/env"
# The Deno binary may live in the repository (setup installs it under .lab/), whose 9p
# mount has no page cache: every process would page its ~95 MB in over 9p again (5-20 s
# per start under TCG). One copy on the guest's tmpfs makes later starts read RAM.
deno_bin=$(command -v deno)
if [ -n "$deno_bin" ] && mkdir -p /run/rrl-bin && cp "$(readlink -f "$deno_bin")" /run/rrl-bin/deno; then
  export PATH="/run/rrl-bin:$PATH"
fi
cd "$rrl_repo" || exit
if [ "${RRL_LAB_PAIR:-pair}" != none ]; then
  pair_args=()
  [ "${RRL_LAB_PAIR:-pair}" = loopback ] && pair_args+=(--loopback)
  bash scripts/softroce-pair.sh up "${pair_args[@]}" >"$rrl_run/pair.log" 2>&1
  pair_rc=$?
  if [ $pair_rc = 3 ] && [ "${RRL_LAB_PAIR:-pair}" = pair ]; then
    sed 's/^/lab: /' "$rrl_run/pair.log"
    echo "lab: falling back to the single-device loopback topology"
    bash scripts/softroce-pair.sh down >>"$rrl_run/pair.log" 2>&1
    bash scripts/softroce-pair.sh up --loopback >>"$rrl_run/pair.log" 2>&1
    pair_rc=$?
  fi
  if [ $pair_rc != 0 ]; then
    sed 's/^/lab: /' "$rrl_run/pair.log"
    echo "lab: the Soft-RoCE pair did not come up (exit $pair_rc)"
    rc=124
    exit
  fi
fi
echo "@@RRL-LAB-START@@"
# Through a pipe, not the serial tty: tools print plain lines instead of redrawing them.
bash "$rrl_run/cmd.sh" </dev/null 2>&1 | cat
rc=${PIPESTATUS[0]}
