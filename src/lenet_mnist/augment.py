"""Augmentation policies as batched tensor operations: random affine maps (rotation, translation,
scale, shear, optional horizontal flip) and optional elastic distortion, sampled with one
`grid_sample` over thousands of images at a time rather than image by image through PIL."""

import math

import numpy as np
import torch
import torch.nn.functional as F

from lenet_mnist.data import SIDE

CHUNK = 8192  # images per grid_sample call: bounds the memory of the float copies


def is_identity(policy):
    return not (
        policy["rotation"]
        or policy["translate"]
        or policy["shear"]
        or policy["hflip"]
        or policy["scale"] != [1, 1]
        or policy["elastic"]
    )


def uniform(n, low, high, generator):
    return low + (high - low) * torch.rand(n, generator=generator, dtype=torch.float64)


def affine_maps(n, policy, generator):
    """(n, 2, 3) maps from output to input coordinates in grid_sample's [-1, 1] frame.

    Each image's forward map is flip, then scale, then shear, then rotation, then translation;
    grid_sample needs where each output pixel comes from, which is the inverse of that map.
    """
    angle = torch.deg2rad(uniform(n, -policy["rotation"], policy["rotation"], generator))
    shear = torch.deg2rad(uniform(n, -policy["shear"], policy["shear"], generator))
    scale = uniform(n, *policy["scale"], generator)
    shift = uniform(2 * n, -policy["translate"], policy["translate"], generator).reshape(n, 2) * 2  # [-1, 1] is 2 wide
    flip = torch.ones(n, dtype=torch.float64)
    if policy["hflip"]:
        flip = torch.where(torch.rand(n, generator=generator) < 0.5, -1.0, 1.0).double()
    cos, sin, zero, one = torch.cos(angle), torch.sin(angle), torch.zeros(n, dtype=torch.float64), flip.new_ones(n)
    rotate = torch.stack([cos, -sin, sin, cos], dim=1).reshape(n, 2, 2)
    shear_x = torch.stack([one, torch.tan(shear), zero, one], dim=1).reshape(n, 2, 2)
    scale_flip = torch.stack([scale * flip, zero, zero, scale], dim=1).reshape(n, 2, 2)
    forward = rotate @ shear_x @ scale_flip
    inverse = torch.linalg.inv(forward)
    return torch.cat([inverse, -(inverse @ shift.unsqueeze(2))], dim=2)


def gaussian_kernel(sigma):
    radius = math.ceil(3 * sigma)
    x = torch.arange(-radius, radius + 1, dtype=torch.float32)
    kernel = torch.exp(-(x**2) / (2 * sigma**2))
    return kernel / kernel.sum()


def elastic_offsets(n, elastic, generator):
    """(n, 28, 28, 2) displacements in grid units: smoothed uniform noise (Simard et al., 2003)."""
    noise = torch.rand(n * 2, 1, SIDE, SIDE, generator=generator) * 2 - 1
    kernel = gaussian_kernel(elastic["sigma"])
    pad = len(kernel) // 2
    smooth = F.conv2d(F.pad(noise, (pad, pad, 0, 0), mode="reflect"), kernel.view(1, 1, 1, -1))
    smooth = F.conv2d(F.pad(smooth, (0, 0, pad, pad), mode="reflect"), kernel.view(1, 1, -1, 1))
    pixels = smooth * elastic["alpha"]
    return (pixels * 2 / SIDE).reshape(n, 2, SIDE, SIDE).permute(0, 2, 3, 1)


def transform(images, policy, generator):
    """One random view of each image (uint8 N x 28 x 28 tensor) under the policy, as uint8."""
    n = len(images)
    theta = affine_maps(n, policy, generator).float()
    grid = F.affine_grid(theta, [n, 1, SIDE, SIDE], align_corners=False)
    if policy["elastic"]:
        grid = grid + elastic_offsets(n, policy["elastic"], generator)
    warped = F.grid_sample(
        images.unsqueeze(1).float(), grid, mode="bilinear", padding_mode="zeros", align_corners=False
    )
    return warped.squeeze(1).round_().clamp_(0, 255).to(torch.uint8)


def materialise(images, policy, generator):
    """(V, N, 28, 28) uint8 views of uint8 images: V = policy["views"], view 0 the originals if
    policy["originals"], every view drawn from `generator` (a seed's "views" stream), so that reruns
    give the same bytes."""
    if is_identity(policy):
        return np.broadcast_to(images, (policy["views"], *images.shape)).copy()
    source = torch.from_numpy(np.require(images, requirements=["C", "W"]))
    views = [images] if policy["originals"] else []
    while len(views) < policy["views"]:
        views.append(
            torch.cat(
                [transform(source[i : i + CHUNK], policy, generator) for i in range(0, len(source), CHUNK)]
            ).numpy()
        )
    return np.stack(views)
