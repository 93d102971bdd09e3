"""End to end: the DVC cache through a remote (a directory, a real S3 server), and touch."""

import json
import os
import signal
import socket
import subprocess
import time

import pytest
import yaml
from conftest import commit_all
from e2e import BIN, run, up_to_date, write_params

from lenet_mnist.files import digest_of

pytestmark = pytest.mark.e2e


def test_a_clone_pulls_everything_from_a_remote_and_both_tools_agree(built_copy, tmp_path, wheel_cache):
    env = {"LENET_MNIST_CACHE": str(wheel_cache)}
    run(["dvc", "remote", "add", "--default", "storage", str(tmp_path / "remote")], built_copy, env)
    run(["dvc", "push"], built_copy, env)
    commit_all(built_copy, "a remote")
    clone = tmp_path / "clone"
    run(["git", "clone", "-q", str(built_copy), str(clone)], tmp_path)
    run(["dvc", "pull"], clone, env)
    for path in (
        "data/MNIST/raw",
        "data/split/train.npy",
        "data/subsets/0.01/1.npz",
        "data/prepared/shifted/0.01/1.npz",
        "models/larger/1.pt",
    ):
        assert (clone / path).exists(), path
    assert (clone / "models/larger/1.pt").read_bytes() == (built_copy / "models/larger/1.pt").read_bytes()
    # The files are those of dvc.lock, but with the times of the checkout: Snakemake needs them put
    # in the pipeline's order.
    run(["lenet-mnist", "touch"], clone, env)
    assert up_to_date(clone, env)


def test_touch_refuses_outputs_that_differ_from_dvc_lock(built_copy, wheel_cache):
    (built_copy / "data/split/val.npy").unlink()
    done = run(["lenet-mnist", "touch"], built_copy, {"LENET_MNIST_CACHE": str(wheel_cache)}, check=False)
    assert done.returncode == 1
    assert done.stderr.strip().endswith(
        "touch: error: dvc status: split, subsample@0.005-0, subsample@0.005-1, subsample@0.01-0, subsample@0.01-1 "
        "and 4 more differ from dvc.lock; run `dvc checkout`, `dvc pull` or `dvc repro` first"
    )
    assert "\n" not in done.stderr.strip()


# The DVC cache on a real S3 server: SeaweedFS's `weed mini` from its PyPI wheel, on 127.0.0.1.
BUCKET = "lenet-mnist"


def free_port():
    """A port that nothing listens on now (weed would move silently to another one if its port were taken)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def s3_server(tmp_path_factory):
    """A SeaweedFS S3 server with one identity, bound to 127.0.0.1 and stopped by its PID."""
    import secrets

    import botocore.config
    import botocore.session

    root = tmp_path_factory.mktemp("s3")
    key, secret = f"lenet{secrets.token_hex(4)}", secrets.token_hex(16)
    (root / "s3.json").write_text(
        json.dumps(
            {
                "identities": [
                    {
                        "name": "lenet",
                        "credentials": [{"accessKey": key, "secretKey": secret}],
                        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                    }
                ]
            }
        )
    )
    (root / "data").mkdir()
    log, port = root / "weed.log", free_port()
    server = subprocess.Popen(
        [
            str(BIN / "weed"),
            "mini",
            f"-dir={root / 'data'}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-s3.port={port}",
            f"-s3.config={root / 's3.json'}",
            f"-bucket={BUCKET}",
            # Only the S3 gateway and what it needs: no UI, WebDAV, catalogs or telemetry (no internet here).
            "-admin.ui=false",
            "-webdav=false",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-master.telemetry=false",
            # Volumes sized here, not from this machine's free disk, which differs between machines.
            "-master.volumeSizeLimitMB=256",
            "-volume.max=8",
        ],
        stdout=open(log, "w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    endpoint = f"http://127.0.0.1:{port}"
    client = botocore.session.get_session().create_client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        region_name="us-east-1",
        config=botocore.config.Config(connect_timeout=5, read_timeout=10, retries={"max_attempts": 1}),
    )
    try:
        deadline = time.monotonic() + 120
        while True:  # ready when an object goes in and comes back: the bucket's first volume has been grown
            assert server.poll() is None, log.read_text()[-2000:]
            try:
                client.put_object(Bucket=BUCKET, Key="ready", Body=b"ready")
                assert client.get_object(Bucket=BUCKET, Key="ready")["Body"].read() == b"ready"
                client.delete_object(Bucket=BUCKET, Key="ready")
                break
            except Exception as error:
                assert time.monotonic() < deadline, (
                    f"no S3 round trip within 120 s ({error}):\n{log.read_text()[-2000:]}"
                )
                time.sleep(0.5)
        yield {"endpoint": endpoint, "key": key, "secret": secret, "log": log}
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


def use_s3_remote(repo, server, secret=None):
    """The remote in .dvc/config (committed), its credentials in .dvc/config.local (not)."""
    run(["dvc", "remote", "add", "--force", "--default", "store", f"s3://{BUCKET}/cache"], repo)
    run(["dvc", "remote", "modify", "store", "endpointurl", server["endpoint"]], repo)
    run(["dvc", "remote", "modify", "--local", "store", "access_key_id", server["key"]], repo)
    run(["dvc", "remote", "modify", "--local", "store", "secret_access_key", secret or server["secret"]], repo)


def run_against(server, cmd, cwd, env):
    """run() for a command that talks to the S3 server, with the server's log in the failure message."""
    try:
        return run(cmd, cwd, env, timeout=300)
    except (AssertionError, subprocess.TimeoutExpired) as failure:
        raise AssertionError(f"{failure}\nweed.log:\n{server['log'].read_text()[-3000:]}") from None


def snapshot(repo):
    """Every file of the working tree and DVC's cache, by path, with its bytes' digest."""
    return {
        str(path.relative_to(repo)): digest_of(path)
        for path in sorted(repo.rglob("*"))
        if path.is_file() and ".git" not in path.relative_to(repo).parts[:1] and "tmp" not in path.parts
    }


def test_the_cache_goes_through_s3_to_a_fresh_clone(built_copy, s3_server, tmp_path, wheel_cache):
    env = {"LENET_MNIST_CACHE": str(wheel_cache)}
    use_s3_remote(built_copy, s3_server)
    commit_all(built_copy, "an S3 remote")
    tracked = run(["git", "ls-files"], built_copy).stdout.split()
    assert ".dvc/config.local" not in tracked
    assert not any(s3_server["secret"] in (built_copy / name).read_text(errors="ignore") for name in tracked)
    run_against(s3_server, ["dvc", "push"], built_copy, env)
    assert "in sync" in run_against(s3_server, ["dvc", "status", "--cloud"], built_copy, env).stdout

    clone = tmp_path / "clone"
    run(["git", "clone", "-q", str(built_copy), str(clone)], tmp_path)
    use_s3_remote(clone, s3_server)
    run_against(s3_server, ["dvc", "pull"], clone, env)
    run(["lenet-mnist", "touch"], clone, env)
    assert up_to_date(clone, env)
    again = tmp_path / "again"  # the same in one command
    run(["git", "clone", "-q", str(built_copy), str(again)], tmp_path)
    use_s3_remote(again, s3_server)
    run_against(s3_server, ["lenet-mnist", "pull"], again, env)
    assert up_to_date(again, env)
    # Every output of the pipeline (not the report, which `snakemake --report` writes beside them).
    outputs = [
        path.relative_to(built_copy)
        for top in ("data", "models", "results")
        for path in (built_copy / top).rglob("*")
        if path.is_file() and path.name not in (".snakemake_timestamp", "report.html")
    ]
    assert any(str(path).endswith(".pt") for path in outputs)
    for restored in (clone, again):
        assert [path for path in outputs if (restored / path).read_bytes() != (built_copy / path).read_bytes()] == []

    # A local-only change: dvc status --cloud names what the remote lacks.
    params = yaml.safe_load((built_copy / "params.yaml").read_text())
    params["runs"]["small"]["epochs"] = 2
    write_params(built_copy, params)
    run(["dvc", "repro"], built_copy, env)
    missing = json.loads(run_against(s3_server, ["dvc", "status", "--cloud", "--json"], built_copy, env).stdout)
    assert {"models/small/0.pt", "models/small/1.pt"} <= set(missing) and set(missing.values()) == {"new"}


@pytest.mark.parametrize("fault", ["wrong credentials", "server down"])
def test_a_failed_push_or_pull_is_one_line_and_changes_nothing(built_copy, s3_server, fault, wheel_cache):
    env = {"LENET_MNIST_CACHE": str(wheel_cache)}
    if fault == "wrong credentials":
        use_s3_remote(built_copy, s3_server, secret="not" + s3_server["secret"])
    else:
        use_s3_remote(built_copy, {**s3_server, "endpoint": f"http://127.0.0.1:{free_port()}"})
    before = snapshot(built_copy)
    cause = "Forbidden" if fault == "wrong credentials" else "Could not connect to the endpoint URL"
    for command in ("push", "pull"):
        done = run(["lenet-mnist", command], built_copy, env, check=False)
        assert done.returncode == 1 and done.stdout == "", done.stderr
        [line] = done.stderr.splitlines()
        assert f" lenet_mnist: {command}: error: dvc {command}: ERROR: " in line and cause in line, line
    assert snapshot(built_copy) == before
