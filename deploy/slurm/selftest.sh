#!/bin/bash
# Runs a sharded sweep on a real Slurm cluster of one node, brought up on
# this machine, and checks that the merged CSV equals the unsharded sweep
# byte for byte. Run it as root from anywhere in the repository:
#   bash deploy/slurm/selftest.sh
# It installs slurm-wlm and munge with apt-get if they are missing, starts
# munged, slurmctld and slurmd with a minimal slurm.conf of its own (this
# machine's cores), submits the array sweep and the dependent merge with
# submit.sh, waits for them, compares, and tears the cluster down.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
shards=${SHARDS:-4}

if [ "$(id -u)" != 0 ]; then
	echo "selftest: run it as root (it starts the Slurm daemons)" >&2
	exit 2
fi
if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
	echo "selftest: installing slurm-wlm and munge"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q slurm-wlm munge >/dev/null
fi

work=$(mktemp -d /tmp/mmubench-slurm.XXXXXX)
chmod 755 "$work"
state=$work/state
mkdir -p "$state/ctld" "$state/d" "$work/out" "$work/munge"
export SLURM_CONF=$work/slurm.conf
node=$(hostname -s)
cleanup() {
	set +e
	[ -f "$state/slurmd.pid" ] && kill "$(cat "$state/slurmd.pid")" 2>/dev/null
	[ -f "$state/slurmctld.pid" ] && kill "$(cat "$state/slurmctld.pid")" 2>/dev/null
	[ -f "$work/munge/munged.pid" ] && kill "$(cat "$work/munge/munged.pid")" 2>/dev/null
	sleep 1
	rm -rf "$work"
}
trap cleanup EXIT

# munge: a key of our own, a socket of our own.
dd if=/dev/urandom of="$work/munge/munge.key" bs=1024 count=1 status=none
chmod 400 "$work/munge/munge.key"
munged --force --key-file="$work/munge/munge.key" --socket="$work/munge/munge.sock" \
	--pid-file="$work/munge/munged.pid" --log-file="$work/munge/munged.log" --seed-file="$work/munge/seed"

cat >"$SLURM_CONF" <<CONF
ClusterName=mmubench-selftest
SlurmctldHost=$node
AuthType=auth/munge
AuthInfo=socket=$work/munge/munge.sock
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
SlurmctldPort=16817
SlurmdPort=16818
StateSaveLocation=$state/ctld
SlurmdSpoolDir=$state/d
SlurmctldPidFile=$state/slurmctld.pid
SlurmdPidFile=$state/slurmd.pid
SlurmctldLogFile=$state/slurmctld.log
SlurmdLogFile=$state/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
NodeName=$node CPUs=$(nproc) State=UNKNOWN
PartitionName=selftest Nodes=$node Default=YES MaxTime=INFINITE State=UP
CONF

echo "selftest: building mmubench"
(cd "$root" && go build -o "$work/mmubench" ./cmd/mmubench)
export MMUBENCH=$work/mmubench

slurmctld -i
slurmd -N "$node"
for i in $(seq 60); do
	if sinfo -h -o %T 2>/dev/null | grep -qE '^(idle|mixed|allocated)'; then break; fi
	sleep 1
done
sinfo

cat >"$work/sweep.json" <<'JSON'
{"sched": "det", "seeds": 40, "groups": [{"workloads": ["reclaim-mprotect"], "policies": ["dsb-only", "flush-mm"]}]}
JSON

read -r array merge < <("$here/submit.sh" "$work/sweep.json" "$shards" "$work/out" "$work/out/merged.csv")
echo "selftest: array job $array ($shards shards), merge job $merge"
for i in $(seq 600); do
	if ! squeue -h -j "$array,$merge" 2>/dev/null | grep -q .; then break; fi
	sleep 1
done
squeue -j "$array,$merge" || true
if [ ! -f "$work/out/merged.csv" ]; then
	echo "selftest: FAILED: no merged CSV" >&2
	tail -n 20 "$work"/out/*.log >&2 || true
	exit 1
fi

echo "selftest: the unsharded sweep, for comparison"
"$MMUBENCH" sweep --file "$work/sweep.json" --reproducible --quiet --out "$work/unsharded.csv" >/dev/null
if cmp "$work/out/merged.csv" "$work/unsharded.csv"; then
	echo "selftest: OK: the merged $shards-shard sweep ($(($(wc -l <"$work/unsharded.csv") - 1)) points) is identical to the unsharded one, byte for byte"
else
	echo "selftest: FAILED: the merged CSV differs from the unsharded sweep" >&2
	exit 1
fi
