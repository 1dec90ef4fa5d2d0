#!/usr/bin/env bash
# Best effort: a real one-node Slurm cluster on loopback for the slurm executor's tests.
#
# Installs slurm-wlm and munge with apt-get when they are missing (root, or sudo without a
# password), writes slurm.conf and gres.conf into DIR (default /tmp/carbonfed-slurm) with typed
# GPUs and no real devices (gpu:v100:4, gpu:a100:2), proctrack/linuxproc and task/none (no cgroups in a
# container), and starts munged, slurmctld and slurmd. Prints the config file's path
# (export it as SLURM_CONF) when the cluster answers; prints nothing otherwise (the Slurm tests
# then skip with one line).
#
#   bash .ci/slurm.sh [DIR]        start (or find running) and print DIR/slurm.conf
#   bash .ci/slurm.sh stop [DIR]   stop the daemons this script started
set -u
if [ "${1:-}" = "stop" ]; then
  dir=${2:-/tmp/carbonfed-slurm}
  for pid in "$dir"/slurmd.pid "$dir"/slurmctld.pid; do
    [ -f "$pid" ] && kill "$(cat "$pid")" 2>/dev/null
  done
  exit 0
fi
dir=${1:-/tmp/carbonfed-slurm}
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif sudo -n true 2>/dev/null; then sudo "$@"; \
            else return 1; fi; }

if ! command -v slurmctld >/dev/null 2>&1 || ! command -v munged >/dev/null 2>&1; then
  { as_root apt-get update -qq \
    && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge; } \
    >/dev/null 2>&1 || exit 0
fi
# Every daemon here runs as root: the test cluster is this machine's and only its own.
[ "$(id -u)" = 0 ] || exit 0

conf=$dir/slurm.conf
export SLURM_CONF=$conf
if [ -f "$conf" ] && timeout 5 sinfo -h -o %T 2>/dev/null | grep -qE "idle|mix|alloc"; then
  echo "$conf"  # already running
  exit 0
fi
mkdir -p "$dir/state" "$dir/spool" "$dir/log"

# munge: a key, then the daemon (one per machine; its socket is the default one)
# (a credential that round-trips: a munged killed but not yet reaped still shows in pgrep)
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
  [ -s /etc/munge/munge.key ] || { mkdir -p /etc/munge \
    && dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null; }
  mkdir -p /run/munge /var/log/munge /var/lib/munge
  chown -R munge:munge /etc/munge /run/munge /var/log/munge /var/lib/munge 2>/dev/null || true
  chmod 0400 /etc/munge/munge.key
  if id munge >/dev/null 2>&1; then
    su -s /bin/sh munge -c "munged" >/dev/null 2>&1 || munged --force >/dev/null 2>&1
  else
    munged --force >/dev/null 2>&1
  fi
fi

host=$(hostname -s)
cat > "$conf" <<EOF
# one-node test cluster written by .ci/slurm.sh
ClusterName=carbonfed
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=16817
SlurmdPort=16818
AuthType=auth/munge
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SwitchType=switch/none
MpiDefault=none
ReturnToService=2
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
# more CPUs than the machine has, so GPUs, not cores, bound how many jobs run at once
SlurmdParameters=config_overrides
GresTypes=gpu
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
# finished jobs stay visible to squeue/scontrol this long (there is no accounting database)
MinJobAge=3600
KillWait=5
SchedulerParameters=sched_interval=1
NodeName=cfnode NodeAddr=127.0.0.1 NodeHostname=$host CPUs=16 RealMemory=4000 Gres=gpu:v100:4,gpu:a100:2 State=UNKNOWN
PartitionName=gpu Nodes=cfnode Default=YES MaxTime=INFINITE State=UP
EOF
# slurmd drops a GPU without a File ("Removing file-less GPU", also with Flags=CountOnly) and
# refuses a File that is not a character device: each fake GPU is a node of the null device
# (major 1, minor 3), which nothing can misuse.
mkdir -p "$dir/dev"
for i in 0 1 2 3 4 5; do
  [ -c "$dir/dev/gpu$i" ] || mknod "$dir/dev/gpu$i" c 1 3 || exit 0
done
cat > "$dir/gres.conf" <<EOF
# typed GPUs on stand-in devices: counted, allocated and numbered, never used
AutoDetect=off
NodeName=cfnode Name=gpu Type=v100 File=$dir/dev/gpu[0-3]
NodeName=cfnode Name=gpu Type=a100 File=$dir/dev/gpu[4-5]
EOF

[ -f "$dir/slurmctld.pid" ] && kill "$(cat "$dir/slurmctld.pid")" 2>/dev/null
[ -f "$dir/slurmd.pid" ] && kill "$(cat "$dir/slurmd.pid")" 2>/dev/null
sleep 0.5
slurmctld -c -f "$conf" >/dev/null 2>&1 || exit 0  # -c: a clean start, no old jobs
slurmd -N cfnode -f "$conf" >/dev/null 2>&1 || exit 0
for _ in $(seq 1 30); do
  if timeout 5 sinfo -h -o %T 2>/dev/null | grep -qE "idle|mix|alloc"; then
    echo "$conf"
    exit 0
  fi
  sleep 1
done
exit 0
