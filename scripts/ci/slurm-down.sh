#!/usr/bin/env bash
# Stop the test SLURM started by slurm-up.sh: cancel every job, then stop slurmd, slurmctld and
# munged by their pid files (never by process name). Safe to run twice or when nothing runs.
set -uo pipefail

if command -v scancel >/dev/null && sinfo -h >/dev/null 2>&1; then
    jobs=$(squeue -h -o %i 2>/dev/null)
    [ -n "$jobs" ] && scancel $jobs
    for _ in $(seq 20); do  # let slurmd kill the job steps (KillWait=5)
        [ -z "$(squeue -h -o %i 2>/dev/null)" ] && break
        sleep 0.5
    done
fi

stop() {  # stop <pid file>: SIGTERM, wait up to 10 s, then SIGKILL
    local file=$1 pid
    [ -s "$file" ] || return 0
    pid=$(cat "$file")
    if kill -0 "$pid" 2>/dev/null; then
        kill "$pid"
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
        kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
    fi
    rm -f "$file"
}
stop /run/slurmd.pid
stop /run/slurmctld.pid
stop /run/munge/munged.pid
echo "slurm-down: stopped"
