"""Stage `preview`: a policy's augmentation at a glance, the first images of seed 0's prepared set
beside their views."""

import logging

from lenet_mnist.charts import plot_preview
from lenet_mnist.data import read_part, read_trainset

log = logging.getLogger(__name__)

PREVIEW_IMAGES = 8


def preview(raw_dir, trainset_path, png_path):
    views, _, indices, key = read_trainset(trainset_path)
    images, _ = read_part(raw_dir, "train")
    title = f"policy {key['policy']}: subset {key['fraction']}, seed {key['seed']}"
    plot_preview(images[indices[:PREVIEW_IMAGES]], views[:, :PREVIEW_IMAGES], png_path, title=title)
    log.info("%s -> %s", trainset_path, png_path)
