#!/bin/bash
# private_systemd.sh: boots a real systemd as PID 1 of new pid/mount/uts/cgroup namespaces, with
# a private /run and /etc/systemd/system and its own cgroup2 subtree, so tests drive a real
# service manager without touching the host's. Needs root.
#
#   private_systemd.sh start DIR        boot; DIR keeps its pid and console log
#   private_systemd.sh exec DIR CMD...  run CMD inside (systemctl, busctl, journalctl...)
#   private_systemd.sh stop DIR         shut it down and remove its cgroups
#
# Inside: journald (volatile) and dbus-daemon run; unit files go to /etc/systemd/system (private),
# D-Bus policies to /run/dbus-1/system.d. Everything else is the host's filesystem and network.
set -eu
self=$(realpath "$0")
cmd=$1
dir=$(realpath -m "$2")
shift 2
cgroup=/sys/fs/cgroup/unified/sprocket-test.${dir//\//_}

# A zombie means its namespaces are gone.
alive() { [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null || echo Z)" != Z ]; }
inside() { nsenter -t "$(cat "$dir/pid1")" -m -p -u -C --wd="$PWD" "$@"; }
unit() { printf '[Unit]\nDefaultDependencies=no\n%b\n' "$2" > "/run/systemd/system/$1"; }

# Runs as PID 1 of the new namespaces: prepares a private /run and boots systemd.
boot() {
  mount -t tmpfs -o mode=755 tmpfs /run
  mount -t tmpfs -o mode=755 tmpfs /etc/systemd/system
  mkdir -p /run/systemd/system /run/dbus-1/system.d /run/systemd/journald.conf.d
  mount -t cgroup2 cgroup2 /sys/fs/cgroup
  # Read-only /proc/sys: nothing inside may change the host's sysctls.
  mount --bind /proc/sys /proc/sys && mount -o remount,bind,ro /proc/sys
  mount --bind "$dir/console.log" /dev/console
  printf '[Journal]\nStorage=volatile\nReadKMsg=no\n' > /run/systemd/journald.conf.d/test.conf
  cat > /run/bus.conf <<'BUS'
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN" "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig><include>/usr/share/dbus-1/system.conf</include><includedir>/run/dbus-1/system.d</includedir></busconfig>
BUS
  unit sprocket-test.target 'Wants=systemd-journald.service dbus.service'
  for t in sysinit basic sockets timers paths slices local-fs network network-online multi-user default; do
    unit "$t.target" ''
  done
  unit shutdown.target 'RefuseManualStart=yes'
  unit exit.target 'Requires=systemd-exit.service\nAfter=systemd-exit.service'
  unit systemd-exit.service 'Requires=shutdown.target\nAfter=shutdown.target\nSuccessAction=exit-force\n[Service]\nType=oneshot\nExecStart=/bin/true'
  unit dbus.service 'Requires=dbus.socket\n[Service]\nType=notify\nExecStart=/usr/bin/dbus-daemon --config-file=/run/bus.conf --address=systemd: --nofork --nopidfile --systemd-activation\nExecReload=/usr/bin/busctl call org.freedesktop.DBus / org.freedesktop.DBus ReloadConfig'
  ln -s /lib/systemd/system/{dbus.socket,systemd-journald.socket,systemd-journald.service} /run/systemd/system/
  exec env -i container=other SYSTEMD_UNIT_PATH=/etc/systemd/system:/run/systemd/system \
    SYSTEMD_GENERATOR_PATH=/nonexistent SYSTEMD_ENVIRONMENT_GENERATOR_PATH=/nonexistent \
    PATH=/usr/sbin:/usr/bin:/sbin:/bin \
    /lib/systemd/systemd --system --unit=sprocket-test.target --log-target=journal --show-status=no
}

case $cmd in
  __enter)  # the only process in our cgroup, then a new cgroup namespace rooted there
    echo 0 > "$cgroup/cgroup.procs"
    exec unshare --cgroup "$self" __boot "$dir" ;;
  __boot) boot ;;
  start)
    if [ -e "$dir/pid1" ]; then echo "already running: $dir" >&2; exit 1; fi
    mkdir -p "$dir" "$cgroup"
    : > "$dir/console.log"
    setsid unshare --pid --fork --mount --uts --mount-proc --propagation private \
      "$self" __enter "$dir" < /dev/null >> "$dir/console.log" 2>&1 &
    echo $! > "$dir/unshare.pid"
    state=
    for _ in $(seq 200); do  # up to 10 s
      if p=$(cat "/proc/$!/task/$!/children" 2>/dev/null) && [ -n "$p" ]; then
        echo "${p%% *}" > "$dir/pid1"  # the children file ends with a space
        # is-system-running exits 1 for "degraded": read what it prints.
        state=$(inside systemctl is-system-running 2>/dev/null || :)
        case $state in running|degraded) exit 0 ;; esac
      fi
      sleep 0.05
    done
    echo "private systemd did not boot (state: ${state:-?}); see $dir/console.log" >&2
    "$self" stop "$dir"
    exit 1 ;;
  exec) SYSTEMD_UNIT_PATH=/etc/systemd/system:/run/systemd/system inside "$@" ;;
  stop)
    outer=$(cat "$dir/unshare.pid" 2>/dev/null) || exit 0
    if [ -e "$dir/pid1" ]; then timeout 10 "$self" exec "$dir" systemctl exit 2>/dev/null || true; fi
    for _ in $(seq 200); do alive "$outer" || break; sleep 0.05; done
    # Still there: SIGKILL to PID 1 ends the whole pid namespace.
    if [ -e "$dir/pid1" ] && alive "$outer"; then kill -KILL "$(cat "$dir/pid1")"; fi
    for _ in $(seq 200); do alive "$outer" || break; sleep 0.05; done
    if [ -d "$cgroup" ]; then find "$cgroup" -depth -type d -exec rmdir {} +; fi
    rm -f "$dir/pid1" "$dir/unshare.pid" ;;
  *) echo "usage: $0 start|exec|stop DIR [CMD...]" >&2; exit 2 ;;
esac
