"""Keep Snakemake and DVC in agreement about what is up to date.

DVC judges a stage by the hashes in dvc.lock, Snakemake a job by file times and its own records
in .snakemake/. Each tool's runs must be made known to the other:

- `lenet-mnist lock` (the Snakefile's onsuccess handler) commits to dvc.lock every stage whose
  outputs a Snakemake run built or found up to date, keeping the files' times;
- `lenet-mnist touch`, after DVC wrote outputs (`dvc pull`, `dvc checkout`, `dvc repro`), checks
  that they are those of dvc.lock and runs `snakemake --touch`: the times then follow the
  pipeline's order, which a checkout does not keep, and Snakemake records the current params;
- `lenet-mnist push` and `pull` are `dvc push` and `dvc pull` (then `touch`) with a failure told in
  one line: DVC's own first error, such as a remote that refuses the credentials or does not answer;
- a Snakemake run holds DVC's own lock of the checkout while its jobs run (hold_dvc_lock), so that
  the two tools never write the same outputs at once: each refuses while the other runs.
"""

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import zc.lockfile

from lenet_mnist.errors import LenetError, one_line

log = logging.getLogger(__name__)

DVC_LOCK = Path(".dvc/tmp/lock")  # what every dvc command that reads or writes the workspace takes
DVC_RWLOCK = Path(".dvc/tmp/rwlock")  # the stages whose commands run now, by process (DVC releases its lock meanwhile)


def running_dvc_stages():
    """(pid, command) of each dvc process that runs a stage's command in this checkout now."""
    try:
        entries = json.loads(DVC_RWLOCK.read_text())
    except (OSError, ValueError):
        return []
    infos = [
        *entries.get("write", {}).values(),
        *(info for infos in entries.get("read", {}).values() for info in infos),
    ]
    running = {(info["pid"], info["cmd"]) for info in infos if isinstance(info, dict) and pid_alive(info.get("pid"))}
    return sorted(running)


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except (TypeError, ValueError, OverflowError, ProcessLookupError):
        return False
    except PermissionError:  # another user's
        return True
    return True


def hold_dvc_lock():
    """DVC's lock of this checkout, held by the calling process (Snakemake's) until it exits or
    closes it: a dvc command started meanwhile stops with DVC's "Unable to acquire lock", and one
    that runs a stage's command now (without its lock) stops at its next stage."""
    refusal = "rerun when it has ended"
    if running := running_dvc_stages():
        pid, cmd = running[0]
        raise LenetError(f"dvc is running in this checkout (pid {pid}: {cmd}); {refusal}")
    DVC_LOCK.parent.mkdir(parents=True, exist_ok=True)
    try:
        return zc.lockfile.LockFile(str(DVC_LOCK))
    except zc.lockfile.LockError:
        raise LenetError(f"{DVC_LOCK} is held: a dvc command is running in this checkout; {refusal}") from None


def run_tool(*args, cwd=None):
    """A command of this environment (dvc, snakemake), run to completion; its output."""
    bin_dir = Path(sys.executable).parent
    done = subprocess.run([str(bin_dir / args[0]), *args[1:]], cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines() or [f"exit {done.returncode}"]
        # DVC's own error line, not the hints that follow it.
        detail = next((line for line in lines if line.startswith("ERROR")), lines[-1])
        raise LenetError(f"{' '.join(args[:2])}: {detail}")
    return done.stdout


def dvc_stages():
    """Each stage of dvc.yaml, expanded, with its outputs' paths."""
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    try:
        with Repo() as repo:
            return {
                stage.addressing: [os.path.normpath(str(out.def_path)) for out in stage.outs]
                for stage in repo.index.stages
            }
    except DvcException as e:  # not a git and DVC repository, say
        raise LenetError(f"dvc: {one_line(e)}") from None


def built_stages(stages, built):
    """The stages all of whose outputs are among `built` (paths, as Snakemake names them)."""
    built = {os.path.normpath(path) for path in built}
    return [name for name, outs in stages.items() if outs and all(out in built for out in outs)]


def file_times(paths):
    """Modification times of the files at or under `paths`."""
    times = {}
    for path in map(Path, paths):
        for file in [path] if path.is_file() else (p for p in path.rglob("*") if p.is_file()):
            times[file] = file.stat().st_mtime_ns
    return times


def lock(built):
    stages = dvc_stages()
    names = built_stages(stages, built)
    if not names:
        raise LenetError("no stage of dvc.yaml has all its outputs among the built files")
    times = file_times(out for name in names for out in stages[name])
    # Naming the stages makes DVC resolve each one anew (minutes for the default study); when the
    # run built them all, as `snakemake` with its default target does, name none.
    run_tool("dvc", "commit", "--force", *([] if len(names) == len(stages) else names))
    # DVC links each file to its cache (.dvc/config: a reflink, else a hardlink, else a copy), which
    # moves its time, and Snakemake would take the new times for new content. (No two outputs have
    # equal content, which a hardlink would give one inode and so one time: subsample.save_subset.)
    for file, mtime in times.items():
        if file.stat().st_mtime_ns != mtime:
            os.utime(file, ns=(mtime, mtime))
    log.info("dvc.lock: %d stages committed", len(names))


def touch():
    changed = json.loads(run_tool("dvc", "status", "--json") or "{}")
    if changed:
        names = ", ".join(sorted(changed)[:5]) + (f" and {len(changed) - 5} more" if len(changed) > 5 else "")
        raise LenetError(
            f"dvc status: {names} differ from dvc.lock; run `dvc checkout`, `dvc pull` or `dvc repro` first"
        )
    # Every job, so that Snakemake records the params of each and later edits rerun what they touch.
    run_tool("snakemake", "--touch", "--forceall", "--cores", "1", "--no-hooks", "--quiet")
    log.info("dvc status is clean; Snakemake's file times and records now follow dvc.lock")


def transfer(command, remote=None):
    """`dvc push` or `dvc pull`, its last line logged; a failure raises one line (run_tool)."""
    done = run_tool("dvc", command, *(["--remote", remote] if remote else []))
    log.info("dvc %s: %s", command, (done.strip().splitlines() or ["nothing to transfer"])[-1])


def push(remote=None):
    transfer("push", remote)


def pull(remote=None):
    transfer("pull", remote)
    touch()
