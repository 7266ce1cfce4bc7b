#!/usr/bin/env bash
# Start a real single-node Slurm cluster on this Debian machine, for the tests marked `slurm`
# (tests/execution/test_slurm.py) and for trying `elubench run --executor slurm` without a cluster.
#
#   sudo scripts/slurm-local.sh        # then: sinfo; pytest -m slurm
#
# What it does: installs Debian's slurm-wlm and munge with apt-get when they are missing, starts
# munged, slurmctld and slurmd as plain daemons (no systemd: CI machines and containers have
# none), waits until the node is idle and prints sinfo. Idempotent: when the cluster is already
# up it only prints sinfo. Needs root (it writes /etc/slurm/slurm.conf and runs the daemons).
# Everything else it keeps (state, spool, logs, pid files) lives under one temporary folder,
# ${SLURM_LOCAL_DIR:-/tmp/elubench-slurm}; stop it with `scripts/slurm-local.sh --stop`.
#
# Exit status: 0 the cluster is up (or was already); 2 it cannot start one here and changed
# nothing (not root, no apt-get, a slurm.conf that is not ours): callers skip the Slurm tests;
# 1 it tried and failed (the daemons' log tails are printed).
set -euo pipefail

DIR=${SLURM_LOCAL_DIR:-/tmp/elubench-slurm}
CONF=/etc/slurm/slurm.conf
MARK="# written by elubench scripts/slurm-local.sh"  # whose slurm.conf it is
WAIT_S=${SLURM_LOCAL_WAIT_S:-60}

say() { echo "slurm-local: $*"; }
cannot() { say "cannot start Slurm here: $*" >&2; exit 2; }
failed() {
  say "FAILED: $*" >&2
  for log in "$DIR"/log/*.log /var/log/munge/munged.log; do
    [ -f "$log" ] && { echo "--- tail of $log" >&2; tail -n 15 "$log" >&2; }
  done
  exit 1
}

node_state() {  # the node's state as sinfo says it (idle, mixed, down*, drained, ...); "" when none
  sinfo -h -N -o '%T' 2>/dev/null | head -n 1 || true
}
usable() { case "$(node_state)" in idle|mixed|allocated|completing) return 0 ;; esac; return 1; }
alive() {  # our slurmctld or slurmd runs: its pid file names a live process (a zombie is not)
  local pid
  pid=$(cat "$DIR/run/$1.pid" 2>/dev/null) || return 1
  [ -n "$pid" ] && [ -r "/proc/$pid/status" ] && ! grep -q '^State:[[:space:]]*Z' "/proc/$pid/status"
}

if [ "${1:-}" = "--stop" ]; then
  [ "$(id -u)" = 0 ] || cannot "not root"
  for daemon in slurmd slurmctld; do
    if alive "$daemon"; then kill "$(cat "$DIR/run/$daemon.pid")"; fi
  done
  say "stopped slurmd and slurmctld (munged left running); state stays in $DIR"
  exit 0
fi

# --- can we, here? (nothing is changed before these checks pass) ---------------------------------
[ "$(id -u)" = 0 ] || cannot "not root (it installs packages, writes $CONF and starts daemons)"
if command -v sinfo >/dev/null && alive slurmctld && alive slurmd && usable; then
  say "already running"; sinfo; exit 0
fi
if [ -f "$CONF" ] && ! grep -qF "$MARK" "$CONF"; then
  cannot "$CONF exists and was not written by this script; not touching a real cluster's config"
fi
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null \
   || ! command -v sbatch >/dev/null || ! command -v munged >/dev/null; then
  command -v apt-get >/dev/null || cannot "Slurm is not installed and there is no apt-get"
  say "installing slurm-wlm and munge with apt-get (a minute or two)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null || cannot "apt-get update failed (no package registry reachable?)"
  # --no-install-recommends: the daemons and clients only, not mail servers and docs
  apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null \
    || failed "apt-get install slurm-wlm munge failed"
fi

# --- munge: Slurm's daemons and clients authenticate every message with it -----------------------
mkdir -p "$DIR"/state "$DIR"/spool "$DIR"/log "$DIR"/run /etc/munge /run/munge /var/log/munge \
         /var/lib/munge /etc/slurm
if [ ! -s /etc/munge/munge.key ]; then  # the package usually makes one; a node-local key will do
  dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null
fi
chown -R munge:munge /etc/munge /run/munge /var/log/munge /var/lib/munge
chmod 700 /etc/munge; chmod 400 /etc/munge/munge.key
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
  # a munged that does not answer (e.g. started with another key): stop it by its pid file
  if pid=$(cat /run/munge/munged.pid 2>/dev/null) && kill "$pid" 2>/dev/null; then sleep 1; fi
  # as its own user, as the packaged service does (munged refuses root without --force)
  runuser -u munge -- munged || failed "munged did not start"
  for _ in $(seq 20); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.25; done
  munge -n | unmunge >/dev/null 2>&1 || failed "munge does not work (munge -n | unmunge)"
fi

# --- slurm.conf -------------------------------------------------------------------------------------
HOST=$(hostname -s)
CPUS=$(nproc)
# slurmd -C reports the memory slurmd will find; a RealMemory above it would drain the node
MEM=$(slurmd -C 2>/dev/null | sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p')
MEM=${MEM:-$(( $(awk '/MemTotal/{print $2}' /proc/meminfo) / 1024 ))}
MEM=$(( MEM * 9 / 10 ))
cat > "$DIR/slurm.conf" <<CONF
$MARK; the settings and why: see the script
ClusterName=elubench-local
# one host, reached by its loopback address: no DNS needed in a container
SlurmctldHost=$HOST(127.0.0.1)
# the daemons run as root, so no slurm user or file ownership has to be set up
SlurmUser=root
SlurmdUser=root
# state, spool, logs and pid files all under $DIR (a temporary folder), none in /var
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/run/slurmctld.pid
SlurmdPidFile=$DIR/run/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
# no cgroups: containers and CI machines have no systemd and no writable cgroup tree, so jobs
# are tracked by their process tree (linuxproc) and not bound to CPUs (task/none)
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
# no accounting: no slurmdbd and no database; sacct then fails (as on many small clusters, which
# is what elubench has to cope with) and job states come from squeue
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
# each CPU can be given to one job, and memory is not a consumable resource: a job that asks for
# no memory (submitit asks for none) would otherwise be given the whole node and the job array
# would run one job at a time
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
MpiDefault=none
# a node that comes back (slurmd restarted) returns to service by itself
ReturnToService=2
# quick to notice a slurmd that is gone, and quick to start
SlurmdTimeout=30
InactiveLimit=0
KillWait=5
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$MEM State=UNKNOWN
PartitionName=debug Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
CONF
if ! cmp -s "$DIR/slurm.conf" "$CONF" 2>/dev/null; then
  cp "$DIR/slurm.conf" "$CONF"
  if alive slurmctld; then scontrol reconfigure || true; fi
fi

# --- the daemons ------------------------------------------------------------------------------------
if ! alive slurmctld; then
  slurmctld -i || failed "slurmctld did not start"   # -i: start even if old state is unreadable
fi
for _ in $(seq 40); do scontrol ping 2>/dev/null | grep -q UP && break; sleep 0.25; done
scontrol ping 2>/dev/null | grep -q UP || failed "slurmctld does not answer (scontrol ping)"
if ! alive slurmd; then
  slurmd || failed "slurmd did not start"
fi

# --- wait until the node takes jobs (not a fixed sleep) --------------------------------------------
resumed=no
deadline=$(( $(date +%s) + WAIT_S ))
until usable; do
  state=$(node_state)
  case "$state" in  # a node left down or drained by an earlier start: put it back once
    down*|drain*|fail*|inval*)
      if [ $resumed = no ]; then scontrol update NodeName="$HOST" State=RESUME 2>/dev/null || true; resumed=yes; fi ;;
  esac
  [ "$(date +%s)" -lt "$deadline" ] || failed "the node is not idle after ${WAIT_S}s (state: ${state:-none})"
  sleep 0.5
done
say "Slurm is up: one node ($HOST, $CPUS CPUs), partition debug; state and logs in $DIR"
sinfo
