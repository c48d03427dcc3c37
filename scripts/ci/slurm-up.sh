#!/usr/bin/env bash
# Install (Debian: apt-get) and start a single-node SLURM on this machine, as root, without
# systemd, for romdask's SLURM tests (tests/cluster/test_slurm.py). Stop it with slurm-down.sh.
#
# Facts behind the settings: /work/shared/notes/slurm.md, summarized in docs/cluster.md.
# - munge first (key, directories owned by `munge`, munged as `munge`), checked by munge -n | unmunge
# - slurm.conf for a container: proctrack/linuxproc, task/none, no accounting, SlurmUser=root,
#   cons_tres with CR_Core_Memory, ReturnToService=2, the node on 127.0.0.1, CPUs/RealMemory given
#   explicitly with SlurmdParameters=config_overrides (more 1-core jobs than physical cores)
# - slurmctld -c, then slurmd; both daemonize and write pid files in /run; poll sinfo until idle
#
# Environment: ROMDASK_SLURM_CPUS (default 4), ROMDASK_SLURM_MEMORY_MB (default 8192),
# ROMDASK_SLURM_TIMEOUT (seconds to wait for an idle node, default 60).
set -euo pipefail

CPUS=${ROMDASK_SLURM_CPUS:-4}
MEMORY_MB=${ROMDASK_SLURM_MEMORY_MB:-8192}
TIMEOUT=${ROMDASK_SLURM_TIMEOUT:-60}
HOST=$(hostname -s)
CONF=/etc/slurm/slurm.conf
MARK="# written by romdask scripts/ci/slurm-up.sh"

die() { echo "slurm-up: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "run as root (it installs packages and starts munged, slurmctld, slurmd)"

# 1. packages
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null \
    || ! command -v sbatch >/dev/null || ! command -v munged >/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # no daemon start from the packages' scripts (no systemd here; this script starts them)
    apt-get install -y -qq --no-install-recommends slurmctld slurmd slurm-client munge >/dev/null
fi

# 2. munge
install -d -o munge -g munge -m 0700 /etc/munge /var/lib/munge /var/log/munge
install -d -o munge -g munge -m 0755 /run/munge
if [ ! -s /etc/munge/munge.key ]; then
    mungekey --create --keyfile /etc/munge/munge.key
fi
chown munge:munge /etc/munge/munge.key
chmod 0400 /etc/munge/munge.key
if ! { [ -s /run/munge/munged.pid ] && kill -0 "$(cat /run/munge/munged.pid)" 2>/dev/null; }; then
    runuser -u munge -- munged
fi
munge -n | unmunge >/dev/null || die "munge does not work (see /var/log/munge/munged.log)"

# 3. slurm.conf (never overwrite one this script did not write)
if [ -e "$CONF" ] && ! head -1 "$CONF" | grep -qF "$MARK"; then
    die "$CONF exists and was not written by this script: refusing to replace a site's SLURM config"
fi
install -d /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm
cat > "$CONF" <<CONFEOF
$MARK
ClusterName=romdask-ci
SlurmctldHost=${HOST}(127.0.0.1)
AuthType=auth/munge
SlurmUser=root
SlurmdUser=root
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
SlurmdParameters=config_overrides
MpiDefault=none
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
# finished jobs leave the controller's memory after 5 s (tests check that squeue is empty)
MinJobAge=5
KillWait=5
NodeName=${HOST} NodeAddr=127.0.0.1 CPUs=${CPUS} RealMemory=${MEMORY_MB} State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONFEOF

# 4. daemons
running() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
running /run/slurmctld.pid || slurmctld -c
running /run/slurmd.pid || slurmd

# 5. wait for an idle node
start=$SECONDS
until [ "$(sinfo -h -N -o %t 2>/dev/null | head -1)" = idle ]; do
    state=$(sinfo -h -N -o %t 2>/dev/null | head -1 || true)
    case "$state" in down*|drain*) scontrol update nodename="$HOST" state=resume 2>/dev/null || true ;; esac
    if (( SECONDS - start > TIMEOUT )); then
        tail -5 /var/log/slurm/slurmctld.log /var/log/slurm/slurmd.log >&2 || true
        die "node $HOST not idle after ${TIMEOUT}s (state: ${state:-no answer from sinfo})"
    fi
    sleep 0.5
done
echo "slurm-up: node $HOST idle ($CPUS CPUs, $MEMORY_MB MB) after $((SECONDS - start)) s"
