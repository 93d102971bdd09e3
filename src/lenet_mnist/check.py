"""Stage `check`, DVC's first: params.yaml validated (the CLI does that before any stage), the code
fingerprints rewritten where a stage's code changed meaning (fingerprints.py), and workflow/jobs.yaml,
the jobs that dvc.yaml loops over, kept equal to what params.yaml defines. Every other stage
depends on a fingerprint, so DVC runs this one first; the Snakefile does the same when it parses."""

import hashlib
import logging
import stat
from pathlib import Path

import yaml

from lenet_mnist.devices import check_device
from lenet_mnist.errors import LenetError
from lenet_mnist.fingerprints import write_fingerprints, write_if_changed
from lenet_mnist.jobs import dvc_vars

log = logging.getLogger(__name__)

JOBS_FILE = "workflow/jobs.yaml"


def jobs_yaml(params):
    """dvc.yaml's job lists, under a digest of them: DVC shows a vars file's every value as a param
    (727 columns in `dvc exp show`), unless a stage depends on some of its keys; summarize, which
    reads every job's results, depends on the digest alone, so a change of jobs is one column."""
    lists = yaml.safe_dump(dvc_vars(params), sort_keys=True, width=120)
    return (
        "# Written by lenet-mnist check (and the Snakefile) from params.yaml: the jobs dvc.yaml loops over.\n"
        f"digest: {hashlib.sha256(lists.encode()).hexdigest()[:16]}\n{lists}"
    )


def special_file(path):
    """The first file at or under `path` that is neither a regular file nor a directory (a FIFO, a
    socket, a device), which a read would block on or misread; None if there is none."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return None  # missing or unreadable: the stage names it when it opens it
    if stat.S_ISDIR(mode):
        return next((found for child in sorted(path.iterdir()) if (found := special_file(child))), None)
    return None if stat.S_ISREG(mode) else path


def sync_generated(params):
    """Fingerprints and the jobs file, from the code and params.yaml; whether the jobs changed. A
    FIFO or device under workflow/ is refused first: reading it would hang both tools."""
    if found := special_file(Path("workflow")):
        raise LenetError(f"{found}: not a regular file or directory (a FIFO or device is never read); remove it")
    if rewritten := write_fingerprints():
        log.info("code fingerprints rewritten: %s", ", ".join(rewritten))
    return write_if_changed(JOBS_FILE, jobs_yaml(params))


def check(params):
    check_device(params)
    if sync_generated(params):
        raise LenetError(
            f"{JOBS_FILE}: rewritten, as it held other jobs than params.yaml defines (params.yaml edited, "
            "or this file edited by hand or left from another branch); dvc read the old list, so run the "
            "same dvc command again"
        )
    log.info("params.yaml is valid; %s and the code fingerprints are up to date", JOBS_FILE)
