#!/usr/bin/env bash
# make test-cluster: the cluster tests on a real distributed filesystem. Brings up GlusterFS on
# this machine (glusterd with its state under a temporary folder, a `replica 2` volume on two
# bricks there), mounts the volume twice with default options, runs tests/it/cluster.rs with
# ANONSHARE_CLUSTER_MOUNTS naming the two mounts (one anonshare-server on each), and tears
# everything down again, also when the tests fail. Needs root and /dev/fuse. Fails loudly when
# GlusterFS cannot be installed, started or mounted: it never passes without having run.
set -euo pipefail
cd "$(dirname "$0")/.."

# The name the bricks are served under: GlusterFS refuses 127.0.0.1 and localhost.
HOST=anonshare-gluster
VOLUME=anonshare-cluster-test
# Bounds on each wait for GlusterFS, in seconds.
START_TIMEOUT=60

say() { echo "cluster-test: $*" >&2; }
fail() { say "FAILED: $*"; exit 1; }

[ "$(id -u)" = 0 ] || fail "needs root (glusterd and FUSE mounts)"
[ -e /dev/fuse ] || fail "needs /dev/fuse"

if ! command -v glusterd >/dev/null || ! command -v gluster >/dev/null || ! command -v glusterfs >/dev/null; then
  say "installing glusterfs-server glusterfs-client"
  apt-get update -qq || fail "apt-get update"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq glusterfs-server glusterfs-client >/dev/null \
    || fail "cannot install GlusterFS"
fi
if ! grep -qw "$HOST" /etc/hosts; then
  say "mapping $HOST to 127.0.0.1 in /etc/hosts"
  echo "127.0.0.1 $HOST" >>/etc/hosts
fi

WORK=$(mktemp -d /tmp/anonshare-gluster.XXXXXX)
STATE=$WORK/state
MOUNT_A=$WORK/mnt-a
MOUNT_B=$WORK/mnt-b
mkdir -p "$STATE" "$WORK/log" "$WORK/brick-1" "$WORK/brick-2" "$MOUNT_A" "$MOUNT_B"
GLUSTERD_PID=

teardown() {
  local rc=$?
  say "tearing down"
  for mount in "$MOUNT_B" "$MOUNT_A"; do
    if mountpoint -q "$mount"; then umount "$mount" || umount -l "$mount" || true; fi
  done
  if [ -n "$GLUSTERD_PID" ]; then
    gluster --mode=script volume stop "$VOLUME" force >/dev/null 2>&1 || true
    gluster --mode=script volume delete "$VOLUME" >/dev/null 2>&1 || true
    # The brick and self-heal daemons this volume started, found by their volume name.
    for pid in $(pgrep -f -- "--volfile-id[ =]$VOLUME\.|-s $HOST --volfile-id gluster/glustershd" || true); do
      kill "$pid" 2>/dev/null || true
    done
    kill "$GLUSTERD_PID" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$GLUSTERD_PID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$GLUSTERD_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
  if [ $rc = 0 ]; then say "passed"; else say "FAILED (exit $rc)"; fi
  exit $rc
}
trap teardown EXIT
trap 'exit 130' INT TERM

if pgrep -x glusterd >/dev/null; then
  fail "a glusterd already runs on this machine; stop it first (this script starts its own)"
fi

say "starting glusterd with its state in $STATE"
sed "s|option working-directory .*|option working-directory $STATE|" /etc/glusterfs/glusterd.vol >"$WORK/glusterd.vol"
glusterd -f "$WORK/glusterd.vol" -l "$WORK/log/glusterd.log" -p "$WORK/glusterd.pid" \
  || fail "glusterd did not start; see $WORK/log/glusterd.log"
for _ in $(seq $((START_TIMEOUT * 10))); do
  [ -s "$WORK/glusterd.pid" ] && GLUSTERD_PID=$(cat "$WORK/glusterd.pid")
  [ -n "$GLUSTERD_PID" ] && gluster --mode=script volume list >/dev/null 2>&1 && break
  sleep 0.1
done
gluster --mode=script volume list >/dev/null 2>&1 || fail "glusterd does not answer: $(tail -5 "$WORK/log/glusterd.log")"

say "creating volume $VOLUME: replica 2 on $WORK/brick-1 and $WORK/brick-2"
gluster --mode=script volume create "$VOLUME" replica 2 \
  "$HOST:$WORK/brick-1" "$HOST:$WORK/brick-2" force || fail "volume create"
gluster --mode=script volume start "$VOLUME" || fail "volume start"

say "mounting it twice with default options: $MOUNT_A and $MOUNT_B"
for mount in "$MOUNT_A" "$MOUNT_B"; do
  mount -t glusterfs "$HOST:/$VOLUME" "$mount" || fail "mount $mount"
  for _ in $(seq $((START_TIMEOUT * 10))); do mountpoint -q "$mount" && break; sleep 0.1; done
  mountpoint -q "$mount" || fail "$mount is not mounted"
done
probe=probe-$$
echo written-through-a >"$MOUNT_A/$probe"
for _ in $(seq $((START_TIMEOUT * 10))); do [ -s "$MOUNT_B/$probe" ] && break; sleep 0.1; done
[ "$(cat "$MOUNT_B/$probe" 2>/dev/null)" = written-through-a ] || fail "a file written through one mount is not seen through the other"
rm -f "$MOUNT_A/$probe"

say "running the cluster tests on $MOUNT_A and $MOUNT_B"
# Arguments, if any, are test name filters in place of all the cluster tests.
ANONSHARE_CLUSTER_MOUNTS="$MOUNT_A:$MOUNT_B" ${CARGO:-cargo} test --test it -- "${@:-cluster::}"
