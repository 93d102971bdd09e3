"""LeNet and its variants, built from an architecture entry of params.yaml's `models`."""

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

ACTIVATIONS = {"sigmoid": nn.Sigmoid, "relu": nn.ReLU}
POOLS = {"avg": nn.AvgPool2d, "max": nn.MaxPool2d}


def lenet(activation="sigmoid", pool="avg", batchnorm="none", init="default"):
    """The notebook's LeNet, layer for layer as written in Problem Set 5 Q1, returning logits.

    The notebook ended with nn.Softmax and fed that into CrossEntropyLoss, which applies softmax
    again; the loss then barely moves. The missing activation after Linear(120, 84) is the notebook's.
    batchnorm="after_pool" is where the notebook's Q2 put it; "before_activation" is where Ioffe and
    Szegedy (and d2l.ai) put it, on the convolutions and the first fully connected layer.
    """
    act, pool_layer = ACTIVATIONS[activation], POOLS[pool]
    before = batchnorm == "before_activation"

    def conv_block(conv):
        channels = conv.out_channels
        return [
            conv,
            *([nn.BatchNorm2d(channels)] if before else []),
            act(),
            pool_layer(kernel_size=2, stride=2),
            *([nn.BatchNorm2d(channels)] if batchnorm == "after_pool" else []),
        ]

    model = nn.Sequential(
        *conv_block(nn.Conv2d(1, 6, kernel_size=5, padding=2)),
        *conv_block(nn.Conv2d(6, 16, kernel_size=5)),
        nn.Flatten(),
        nn.Linear(16 * 5 * 5, 120),
        *([nn.BatchNorm1d(120)] if before else []),
        act(),
        nn.Linear(120, 84),
        nn.Linear(84, 10),
    )
    if init == "xavier":
        for layer in model:
            if isinstance(layer, (nn.Conv2d, nn.Linear)):
                nn.init.xavier_uniform_(layer.weight)
    return model


def build_model(architecture):
    """A model from a `models` entry of params.yaml (schema defaults filled in), as the train and
    evaluate stages run it: lenet()'s, with its convolution weights in channels-last layout where it
    has no BatchNorm, so that oneDNN's convolutions and pooling run without layout conversions (ATen's
    BatchNorm of 6 channels is slower on channels-last tensors). `lenet-mnist bench` times each model
    with and without it (docs/speed.md)."""
    model = lenet(**architecture)
    if not any(isinstance(layer, nn.BatchNorm2d) for layer in model):
        model = model.to(memory_format=torch.channels_last)
    return model


@torch.no_grad()
def predict(model, images, batch_size):
    """Summed cross-entropy needs labels, so this returns logits (images x classes); batches only
    bound the memory."""
    model.eval()
    return torch.cat([model(images[i : i + batch_size]) for i in range(0, len(images), batch_size)], dim=-2)


def score(logits, labels):
    """Sample-weighted loss and accuracy over every image (not a mean of per-batch means)."""
    preds = logits.argmax(dim=1)  # per image: the notebook's flattened argmax gave one number per batch
    loss = F.cross_entropy(logits, labels, reduction="sum").item() / len(labels)
    return loss, (preds == labels).sum().item() / len(labels), preds


def pixels(images):
    """Float images in [0, 1] with a channel axis (what the notebook's ToTensor gave), from uint8 N x 28 x 28."""
    return to_unit(images.unsqueeze(1))


def to_unit(images, memory_format=torch.preserve_format):
    """uint8 pixels as floats in [0, 1]."""
    return images.to(torch.float32, memory_format=memory_format).div_(255)


def to_tensors(images, labels, device="cpu"):
    """(pixels, int64 labels) on the device, from uint8 numpy arrays."""
    x = torch.from_numpy(np.require(images, requirements=["C", "W"])).to(device)
    return pixels(x), torch.from_numpy(labels.astype(np.int64)).to(device)
