#!/usr/bin/env bash
# A one-node SLURM cluster on this machine, for `make test-cluster` and for trying
# workflow/profiles/slurm before a real cluster: munge, slurmctld and slurmd from Debian's packages
# (installed if missing), bound to 127.0.0.1, started without systemd. Run as root.
#
#   tests/cluster/slurm.sh start   write slurm.conf, start the daemons, wait until a trivial srun runs
#   tests/cluster/slurm.sh stop    cancel its jobs, stop the daemons that start started, and nothing else
#
# Both can be run twice. State, logs and the pids of what start started live in $LOCAL_SLURM_DIR.
set -euo pipefail

DIR=${LOCAL_SLURM_DIR:-/var/tmp/lenet-mnist-slurm}
STARTED=$DIR/started            # "name pid" per daemon that start started
CONF=/etc/slurm/slurm.conf      # srun inside a batch job reads this path, whatever SLURM_CONF says
MARK="# Written by lenet-mnist tests/cluster/slurm.sh; removed by its stop."
CTLD_PORT=16817
SLURMD_PORT=16818
READY_S=60

die() { echo "slurm.sh: error: $*" >&2; exit 1; }

alive() {  # alive NAME PID: PID still runs the program NAME (and is not a reused pid)
    [ -r "/proc/$2/comm" ] && [ "$(cat "/proc/$2/comm")" = "$1" ]
}

record() {  # record NAME PIDFILE: note a daemon that start started, once it has written its pid
    local _
    for _ in $(seq 100); do [ -s "$2" ] && break; sleep 0.1; done
    [ -s "$2" ] || { echo "slurm.sh: $1 wrote no $2" >&2; return 1; }
    echo "$1 $(cat "$2")" >>"$STARTED"
}

install_packages() {
    local missing=0 tool
    for tool in munged slurmctld slurmd srun sinfo squeue scontrol; do
        command -v "$tool" >/dev/null || missing=1
    done
    [ "$missing" = 0 ] && return
    echo "slurm.sh: installing munge, slurmctld, slurmd and slurm-client from Debian's packages"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        munge slurmctld slurmd slurm-client >/dev/null
}

start_munge() {
    if munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1; then
        return  # a munged already runs: use it, and leave it running at stop
    fi
    if [ ! -s /etc/munge/munge.key ]; then
        mungekey --create --keyfile=/etc/munge/munge.key
        chown munge:munge /etc/munge/munge.key
        chmod 600 /etc/munge/munge.key
    fi
    install -d -o munge -g munge -m 755 /run/munge
    rm -f /run/munge/munged.pid
    runuser -u munge -- /usr/sbin/munged
    record munged /run/munge/munged.pid
}

write_conf() {
    local node host
    node=$(slurmd -C | head -n 1)  # NodeName=<host> CPUs=... RealMemory=...: this machine as SLURM sees it
    host=${node#NodeName=}
    host=${host%% *}
    install -d -o slurm -g slurm "$DIR/state" "$DIR/log"
    install -d "$DIR/spool"
    mkdir -p "$(dirname "$CONF")"
    cat >"$CONF" <<EOF
$MARK
ClusterName=lenet-mnist
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
SlurmUser=slurm
AuthType=auth/munge
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
# No accounting (no slurmdbd), as on many small clusters: finished jobs are seen through squeue
# for MinJobAge seconds, long enough for Snakemake's SLURM plugin to read their final state.
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
MinJobAge=600
$node NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=main Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
}

wait_ready() {
    local deadline=$((SECONDS + READY_S))
    until [ "$(sinfo -h -o %t 2>/dev/null)" = idle ]; do
        [ $SECONDS -lt $deadline ] || return 1
        sleep 1
    done
    timeout "$READY_S" srun -N 1 -n 1 true
}

start() {
    [ "$(id -u)" = 0 ] || die "run as root: it installs packages, writes $CONF and starts daemons"
    if [ -s "$STARTED" ]; then
        wait_ready && echo "slurm.sh: already running (sinfo: $(sinfo -h -o '%P %t'))" && return
        die "a previous start left daemons in $STARTED that do not answer; run stop first"
    fi
    if [ -e "$CONF" ] && ! grep -qxF "$MARK" "$CONF"; then
        die "$CONF exists and was not written by this script: this machine has its own SLURM"
    fi
    for daemon in slurmctld slurmd; do
        if pgrep -x "$daemon" >/dev/null; then
            die "a $daemon that this script did not start is running (pid $(pgrep -x "$daemon" | head -n 1))"
        fi
    done
    install_packages
    mkdir -p "$DIR"
    : >"$STARTED"
    trap 'echo "slurm.sh: start failed; daemon logs in $DIR/log" >&2; tail -n 20 "$DIR"/log/*.log >&2 || true; stop' ERR
    start_munge
    write_conf
    slurmctld -c  # -c: no state from an earlier start
    record slurmctld "$DIR/slurmctld.pid"
    slurmd
    record slurmd "$DIR/slurmd.pid"
    wait_ready
    trap - ERR
    echo "slurm.sh: SLURM ready on 127.0.0.1:$CTLD_PORT (sinfo: $(sinfo -h -o '%P %t %c CPUs %m MB'))"
}

stop() {
    trap - ERR
    if [ -s "$STARTED" ] && pgrep -x slurmctld >/dev/null; then
        squeue -h -o %i 2>/dev/null | xargs -r scancel || true  # every job on this cluster is ours
    fi
    if [ -f "$STARTED" ]; then
        # Last started, first stopped: slurmd, slurmctld, then munged.
        tac "$STARTED" | while read -r name pid; do
            alive "$name" "$pid" || continue
            kill -TERM "$pid"
            for _ in $(seq 50); do alive "$name" "$pid" || break; sleep 0.2; done
            ! alive "$name" "$pid" || kill -KILL "$pid"
            echo "slurm.sh: stopped $name (pid $pid)"
        done
    fi
    if [ -e "$CONF" ] && grep -qxF "$MARK" "$CONF"; then
        rm -f "$CONF"
    fi
    rm -rf "$DIR"
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    *) die "usage: $0 start|stop" ;;
esac
