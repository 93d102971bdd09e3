"""The device a job computes on, a library: CUDA where params.yaml asks for it, or finds it."""

from lenet_mnist.errors import LenetError


def resolve_device(name):
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def check_device(params):
    """A plan that trains on CUDA needs a CUDA device where the jobs run: refused before any job
    (whose outputs Snakemake removes before it runs) rather than as a traceback in each."""
    if params["compute"]["device"] == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise LenetError(
                "params.yaml: compute.device: cuda, but torch finds no CUDA device on this machine "
                "(allowed here: auto, cpu)"
            )
