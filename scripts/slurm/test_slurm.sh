#!/usr/bin/env bash
# End-to-end test of the SLURM sweep path (hydra/launcher=slurm, the submitit launcher) on
# this machine: install slurm-wlm + munge if missing, start a one-node cluster (controller
# and node on localhost) from a fresh temp dir, fit once, run a 4-job multirun sweep through
# SLURM on the cached fit, and check the gathered sweep_table.csv. Whatever happens, the
# EXIT trap cancels the jobs, stops slurmd, slurmctld and munged and removes the temp dir.
#
#   make test-slurm                      # uses the project's .venv
#   NK_PYTHON=/path/to/python scripts/slurm/test_slurm.sh
#   VENV=/tmp/slurm-venv scripts/slurm/test_slurm.sh
#
# Environment (all optional):
#   NK_PYTHON / VENV      python with the project's requirements and hydra-submitit-launcher
#                         (default: $VENV/bin/python, else <repo>/.venv/bin/python)
#   NK_SLURM_KEEP=DIR     copy sweep_table.csv, the job folders' run.json and the daemon and
#                         job logs to DIR before the temp dir is removed (CI artefacts)
#   NK_SLURM_TIMEOUT=S    upper bound in seconds for the sweep (default 900)
#   SLURMCTLD_PORT, SLURMD_PORT   ports for the daemons (default 6817, 6818)
# Needs root (it installs packages and runs the daemons as root): it is meant for a throwaway
# container or CI runner, not a machine with a real SLURM installation.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
if [[ -z "${NK_PYTHON:-}" ]]; then
    if [[ -n "${VENV:-}" ]]; then NK_PYTHON=$VENV/bin/python; else NK_PYTHON=$REPO/.venv/bin/python; fi
fi
TIMEOUT_S=${NK_SLURM_TIMEOUT:-900}
SLURMCTLD_PORT=${SLURMCTLD_PORT:-6817}
SLURMD_PORT=${SLURMD_PORT:-6818}
T0=$SECONDS

say() { printf 'test-slurm [%3ds]: %s\n' "$((SECONDS - T0))" "$*"; }
die() { printf 'test-slurm: error: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------- preconditions
[[ $(id -u) -eq 0 ]] || die "needs root (installs slurm-wlm/munge and runs the daemons as root); run it in a container or CI runner"
[[ -x "$NK_PYTHON" ]] || die "no python at NK_PYTHON=$NK_PYTHON; run 'make test' once to create .venv, or set NK_PYTHON=/path/to/python or VENV=/path/to/venv"
"$NK_PYTHON" -c 'import hydra_plugins.hydra_submitit_launcher, submitit' 2>/dev/null \
    || die "$NK_PYTHON cannot import hydra_plugins.hydra_submitit_launcher: install the launchers extra ($NK_PYTHON -m pip install 'hydra-submitit-launcher==1.2.0')"

if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v munged >/dev/null; then
    say "installing slurm-wlm and munge (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq slurm-wlm munge >/dev/null
fi
for cmd in slurmctld slurmd munged mungekey sinfo squeue scancel sbatch; do
    command -v "$cmd" >/dev/null || die "'$cmd' not found after installing slurm-wlm and munge"
done
for port in "$SLURMCTLD_PORT" "$SLURMD_PORT"; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        die "port $port is already in use (another SLURM?); set SLURMCTLD_PORT/SLURMD_PORT to free ports"
    fi
done

# ---------------------------------------------------------------- temp dir + cleanup
exec 3>&1 4>&2   # the script's own stdout/stderr, for the cleanup's messages
TMP=$(mktemp -d "${TMPDIR:-/tmp}/nk-slurm.XXXXXX")
chmod 755 "$TMP"
STATE=$TMP/state
# Every process this script starts inherits this marker; the cleanup uses it to find
# stragglers (slurmstepd and job processes re-parent away from slurmd).
export NK_SLURM_TEST_RUN=$TMP

stop_pidfile() {  # stop_pidfile NAME FILE: TERM, wait up to 10 s, then KILL
    local name=$1 file=$2 pid
    [[ -s "$file" ]] || return 0
    pid=$(<"$file")
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || { say "stopped $name (pid $pid)"; return 0; }; sleep 0.2; done
    kill -KILL "$pid" 2>/dev/null || true
    say "killed $name (pid $pid) after 10 s"
}

marked_pids() {  # pids of live processes that carry this run's marker, except this shell
    local p
    for p in /proc/[0-9]*; do
        p=${p#/proc/}
        [[ $p == "$$" || $p == "$BASHPID" ]] && continue
        { tr '\0' '\n' <"/proc/$p/environ"; } 2>/dev/null | grep -qxF "NK_SLURM_TEST_RUN=$TMP" && echo "$p"
    done
    return 0
}

cleanup() {
    local rc=$? jobs left
    # Finish the cleanup even if a second Ctrl-C or TERM arrives; write to the terminal even
    # when the signal came in while a step's output went to its log file.
    trap - EXIT
    trap '' INT TERM
    exec 1>&3 2>&4
    set +e
    if [[ -s "$STATE/slurmctld.pid" ]] && kill -0 "$(<"$STATE/slurmctld.pid")" 2>/dev/null; then
        jobs=$(squeue -h -r -o %i 2>/dev/null)   # -r: one line per array task
        if [[ -n "$jobs" ]]; then
            say "cancelling jobs still queued: $(echo $jobs)"
            scancel $jobs
            for _ in $(seq 30); do [[ -z "$(squeue -h -o %i 2>/dev/null)" ]] && break; sleep 1; done
        fi
    fi
    if [[ $rc -ne 0 ]]; then
        for log in slurmctld.log slurmd.log munged.log; do
            [[ -s "$STATE/$log" ]] && { echo "--- last lines of $log" >&2; tail -n 15 "$STATE/$log" >&2; }
        done
    fi
    if [[ -n "${NK_SLURM_KEEP:-}" ]]; then
        mkdir -p "$NK_SLURM_KEEP"
        cp "$STATE"/*.log "$TMP"/fit.log "$TMP"/sweep.log "$NK_SLURM_KEEP"/ 2>/dev/null
        if [[ -d "$TMP/multirun" ]]; then
            (cd "$TMP/multirun" && find . \( -name sweep_table.csv -o -name sweep_contrasts.csv -o -name run.json \
                -o -path '*/.submitit/*' -name '*.out' -o -path '*/.submitit/*' -name '*.err' \) -print0 \
                | xargs -0 -r cp --parents -t "$NK_SLURM_KEEP")
        fi
        say "kept logs and the sweep table in $NK_SLURM_KEEP"
    fi
    stop_pidfile slurmd "$STATE/slurmd.pid"
    stop_pidfile slurmctld "$STATE/slurmctld.pid"
    stop_pidfile munged "$STATE/munged.pid"
    left=$(marked_pids)
    if [[ -n "$left" ]]; then
        say "stopping leftover processes of this run: $(echo $left)"
        kill -TERM $left 2>/dev/null; sleep 2
        left=$(marked_pids); [[ -n "$left" ]] && kill -KILL $left 2>/dev/null
    fi
    rm -rf "$TMP"
    say "$([[ $rc -eq 0 ]] && echo passed || echo "FAILED (exit $rc)"); cluster stopped, $TMP removed"
    exit "$rc"
}
trap cleanup EXIT
# Long steps run in the background and are waited for, so that a signal reaches the trap at
# once instead of after the step (bash defers traps while a foreground child runs).
run() { "$@" & wait $!; }
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------- munge
mkdir -p "$STATE/ctld" "$STATE/d" "$STATE/munge"
chmod 711 "$STATE/munge"   # munged wants the socket dir searchable by all
MUNGE_SOCKET=$STATE/munge/munge.socket.2
mungekey --create --keyfile="$STATE/munge/munge.key" --force
chmod 600 "$STATE/munge/munge.key"
munged --force --key-file="$STATE/munge/munge.key" --socket="$MUNGE_SOCKET" \
    --pid-file="$STATE/munged.pid" --log-file="$STATE/munged.log" --seed-file="$STATE/munge/munged.seed"
for _ in $(seq 50); do [[ -S "$MUNGE_SOCKET" ]] && break; sleep 0.1; done
[[ -S "$MUNGE_SOCKET" ]] || die "munged did not create its socket $MUNGE_SOCKET"
say "munged up (pid $(<"$STATE/munged.pid"))"

# ---------------------------------------------------------------- slurm.conf
CPUS=$(nproc)
MEM_MB=$(free -m | awk '/^Mem:/ {print $2}')
REAL_MEMORY=$((MEM_MB * 9 / 10))   # slurmd drains a node that reports less than declared
sed -e "s|@SLURMCTLD_PORT@|$SLURMCTLD_PORT|g" -e "s|@SLURMD_PORT@|$SLURMD_PORT|g" \
    -e "s|@MUNGE_SOCKET@|$MUNGE_SOCKET|g" -e "s|@STATE_DIR@|$STATE|g" \
    -e "s|@CPUS@|$CPUS|g" -e "s|@REAL_MEMORY@|$REAL_MEMORY|g" "$HERE/slurm.conf.in" >"$TMP/slurm.conf"
if grep -nE '@[A-Z_]+@' "$TMP/slurm.conf"; then die "unfilled field in $TMP/slurm.conf (lines above)"; fi
export SLURM_CONF=$TMP/slurm.conf
# submitit asks `sacct -j <id>` whether a job has ended; without an accounting database plain
# sacct fails, and a job that dies without writing its result (a crash, sys.exit, scancel)
# would be waited for until the time limit. This stand-in answers from the job completion
# log (JobCompType=jobcomp/filetxt) and, for jobs still queued or running, from squeue
# (plain `sacct --completion` cannot parse array jobs from that log).
mkdir -p "$TMP/bin"
ln -s "$HERE/sacct" "$TMP/bin/sacct"
export NK_SLURM_JOBCOMP=$STATE/jobcomp.txt
export PATH=$TMP/bin:$PATH

# ---------------------------------------------------------------- slurmctld + slurmd
slurmctld -i -f "$SLURM_CONF"          # -i: ignore (absent) saved state; daemonises, writes its pid file
slurmd -f "$SLURM_CONF" -N localhost
say "waiting for the node to be idle"
state=""
for _ in $(seq 60); do
    state=$(sinfo -h -n localhost -o %t 2>/dev/null || true)
    [[ $state == idle ]] && break
    sleep 1
done
[[ $state == idle ]] || die "node localhost not idle after 60 s (sinfo says '${state:-nothing}'); see the logs above"
say "cluster up: $(sinfo -h -o '%P %D %t %c CPUs %m MB')"

# ---------------------------------------------------------------- fit once, then the sweep
# The jobs run with the same python on the node; sbatch exports this environment to them
# (submitit's default --export=ALL), so the repo's code and the cache dirs reach the jobs.
export PYTHONPATH=$REPO/src${PYTHONPATH:+:$PYTHONPATH}
export NKDEFECTIONS_CACHE_DIR=$TMP/cache
export PYTENSOR_FLAGS=base_compiledir=$TMP/cache/pytensor
export MPLBACKEND=Agg
cd "$TMP"
FIT=(sampler.draws=200 sampler.tune=200 sampler.chains=2 gate=relaxed "cache_dir=$TMP/fits")

say "fitting once (cached for the jobs)"
run "$NK_PYTHON" -m nkdefections.cli "${FIT[@]}" 'scenarios=[status_quo]' \
    "output_dir=$TMP/fit-run" outputs.fit_checks=false outputs.plots=false >"$TMP/fit.log" 2>&1 \
    || { tail -n 30 "$TMP/fit.log" >&2; die "the fit failed (log above)"; }
say "fit done"

say "submitting a 4-job sweep (2 border x 2 sanctions) through hydra/launcher=slurm"
run timeout -s TERM "$TIMEOUT_S" "$NK_PYTHON" -m nkdefections.cli -m experiment=enforcement_sanctions_sweep \
    hydra/launcher=slurm hydra.launcher.partition=debug \
    hydra.launcher.cpus_per_task=1 hydra.launcher.mem_gb=2 hydra.launcher.timeout_min=10 \
    "hydra.sweep.dir=$TMP/multirun" "${FIT[@]}" \
    sweep.border=0.5,1.5 sweep.sanctions=5.5,11.14 >"$TMP/sweep.log" 2>&1 \
    || { tail -n 40 "$TMP/sweep.log" >&2; die "the sweep failed or took longer than ${TIMEOUT_S} s (log above)"; }
say "sweep done"

# ---------------------------------------------------------------- checks
"$NK_PYTHON" - "$TMP/multirun" <<'PY'
import json
import re
import sys
from pathlib import Path

import pandas as pd

sweep = Path(sys.argv[1])
table = sweep / "sweep_table.csv"
if not table.is_file():
    sys.exit(f"no {table}: the GatherSweep callback did not run or no job wrote a forecast")
df = pd.read_csv(table)
jobs = sorted(df["job"].unique())
if jobs != [0, 1, 2, 3]:
    sys.exit(f"{table} has rows from jobs {jobs}, expected [0, 1, 2, 3]")
grid = df[["sweep.border", "sweep.sanctions"]].drop_duplicates()
if len(grid) != 4:
    sys.exit(f"{table} has {len(grid)} distinct (border, sanctions) points, expected 4:\n{grid}")
runs = [json.loads((sweep / str(j) / "run.json").read_text()) for j in jobs]
missed = [j for j, r in zip(jobs, runs) if not r.get("cache_hit")]
if missed:
    sys.exit(f"jobs {missed} sampled instead of reusing the cached fit (cache_hit false in run.json)")
if len({r["fit_id"] for r in runs}) != 1:
    sys.exit("the jobs did not share one fit (different fit_id in run.json)")
# submitit submits one job array; each task has a folder <array id>_<task> with its log.
tasks = sorted(p.name for p in (sweep / ".submitit").iterdir() if p.is_dir() and re.fullmatch(r"\d+_\d+", p.name))
if len(tasks) != 4:
    sys.exit(f"expected 4 SLURM array tasks under {sweep / '.submitit'}, found {tasks}")
done = [t for t in tasks if "Job completed successfully" in next((sweep / ".submitit" / t).glob("*_log.out")).read_text()]
if done != tasks:
    sys.exit(f"SLURM tasks {sorted(set(tasks) - set(done))} did not log a successful completion")
print(f"sweep_table.csv: {len(df)} rows from 4 SLURM array tasks {tasks}, one cached fit {runs[0]['fit_id']}")
cum = df[df["year"].astype(str).str.startswith("cumulative")]
print("expected arrivals 2017-2020 (the experiment's quantity) per job:")
print(cum[["job", "sweep.border", "sweep.sanctions", "year", "mean", "lower_80", "upper_80"]].round({"mean": 0, "lower_80": 0, "upper_80": 0}).to_string(index=False))
if len(cum) != 4:
    sys.exit(f"{table} has {len(cum)} cumulative rows, expected one per job")
PY
