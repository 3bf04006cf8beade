"""Pictures to look at: faces with boxes and keypoints, sample grids, conv1 filters and feature maps.

Everything is drawn with OpenCV onto BGR uint8 images, so no plotting library is needed.
"""

import cv2
import numpy as np
import torch
from torch.utils.data import default_collate

from keypoints.core import geometry
from keypoints.core.checks import optional, whole
from keypoints.core.landmarks import per_face_nme
from keypoints.training.models import first_conv
from keypoints.core.drawing import PREDICTION, TRUTH, draw_points

RULES = {  # conf/visualize.yaml
    "face_index": whole(0),
    "num_samples": whole(1),
    "num_test": whole(1),
    "tile": whole(16),
    "seed": optional(whole(0)),
}


def fit(image: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """`image` letterboxed into a size x size tile, and the affine that takes its points there."""
    h, w = image.shape[:2]
    affine = geometry.box_to_input((0, 0, w, h), size)  # the image's bounding square fills the tile
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    return geometry.crop(image, affine, size, border=cv2.BORDER_CONSTANT), affine


def tile_with_points(image: np.ndarray, size: int, *point_sets, text: str = "") -> np.ndarray:
    """One labelled tile: `image` fitted to `size`, then (points, colour) pairs drawn on top."""
    tile, affine = fit(image, size)
    for points, color in point_sets:
        draw_points(tile, geometry.apply(affine, np.asarray(points, np.float64)), color, radius=max(1, size // 100))
    if text:
        cv2.putText(tile, text, (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.putText(tile, text, (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1, cv2.LINE_AA)
    return tile


def grid(tiles: list[np.ndarray], cols: int, pad: int = 4) -> np.ndarray:
    """Equal-size BGR tiles in rows of `cols`, on white."""
    h, w = tiles[0].shape[:2]
    rows = -(-len(tiles) // cols)
    out = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad, 3), 255, np.uint8)
    for i, t in enumerate(tiles):
        r, c = divmod(i, cols)
        out[pad + r * (h + pad):pad + r * (h + pad) + h, pad + c * (w + pad):pad + c * (w + pad) + w] = t
    return out


def network_view(image: torch.Tensor) -> np.ndarray:
    """A (C, S, S) input tensor in [0, 1] -> the BGR picture the network saw."""
    pixels = (image.detach().cpu().float().clamp(0, 1) * 255).round().byte().numpy().transpose(1, 2, 0)
    return cv2.cvtColor(pixels, cv2.COLOR_GRAY2BGR) if pixels.shape[2] == 1 else np.ascontiguousarray(pixels)


def input_faces(images: torch.Tensor, truth: torch.Tensor, pred: torch.Tensor, size: int, tile: int) -> np.ndarray:
    """One row of network inputs with normalised ground truth (green) and predictions (red)."""
    tiles = [tile_with_points(network_view(im), tile, (geometry.denormalize(t, size).cpu().numpy(), TRUTH),
                              (geometry.denormalize(p, size).float().cpu().numpy(), PREDICTION))
             for im, t, p in zip(images, truth, pred)]
    return grid(tiles, cols=len(tiles))


def sample_grid(dataset, n: int, augmentations: int, tile: int, seed: int = 0) -> np.ndarray:
    """Rows of training faces: the labelled photo, then `augmentations` draws of the training
    pipeline with the keypoints it moved, which must stay on the same landmarks."""
    dataset.transform.set_random_seed(seed)
    size, tiles = dataset.input_size, []
    for i in range(min(n, len(dataset))):
        tiles.append(tile_with_points(dataset.images[i], tile, (dataset.points[i], TRUTH), text=dataset.names[i][:24]))
        for k in range(augmentations):
            item = dataset[i]
            points = geometry.denormalize(item["keypoints"], size).numpy()
            tiles.append(tile_with_points(network_view(item["image"]), tile, (points, TRUTH), text=f"augmented {k + 1}"))
    return grid(tiles, cols=1 + augmentations)


def prediction_grid(module, dataset, n: int, tile: int, cols: int = 6) -> np.ndarray:
    """Test photos with ground truth (green) and the model's keypoints (red), NME on each."""
    items = [dataset[i] for i in range(min(n, len(dataset)))]
    batch = default_collate(items)
    with torch.inference_mode():
        pred = module.predict_pixels(batch).float()
    nme = per_face_nme(pred, batch["keypoints_px"])
    tiles = [tile_with_points(dataset.images[i], tile, (batch["keypoints_px"][i].numpy(), TRUTH),
                              (pred[i].numpy(), PREDICTION), text=f"NME {nme[i]:.1%}") for i in range(len(items))]
    return grid(tiles, cols=min(cols, len(tiles)))



def conv_filters(module, tile: int = 48, cols: int = 16) -> np.ndarray:
    """First-layer kernels, mid-grey = 0, white positive, black negative (one scale for all)."""
    weight = first_conv(module).weight.detach().float().cpu()
    weight = weight / weight.abs().max().clamp_min(1e-12)
    tiles = []
    for kernel in weight:
        pixels = (127.5 + 127.5 * kernel.numpy().transpose(1, 2, 0)).round().astype(np.uint8)
        pixels = cv2.cvtColor(pixels[..., 0], cv2.COLOR_GRAY2BGR) if pixels.shape[2] != 3 else pixels
        tiles.append(cv2.resize(pixels, (tile, tile), interpolation=cv2.INTER_NEAREST))
    return grid(tiles, cols=min(cols, len(tiles)))


def feature_maps(module, image: torch.Tensor, tile: int = 96, cols: int = 12) -> np.ndarray:
    """The face the network sees, then what each first-layer filter makes of it (viridis, each
    map stretched to its own range)."""
    conv, seen = first_conv(module), []
    hook = conv.register_forward_hook(lambda _m, _i, out: seen.append(out[0].detach().float().cpu()))
    try:
        with torch.inference_mode():
            module(image[None].to(next(module.parameters()).device))
    finally:
        hook.remove()
    tiles = [fit(network_view(image), tile)[0]]
    for fmap in seen[0]:
        lo, hi = fmap.min(), fmap.max()
        pixels = ((fmap - lo) / (hi - lo).clamp_min(1e-12) * 255).round().byte().numpy()
        tiles.append(cv2.resize(cv2.applyColorMap(pixels, cv2.COLORMAP_VIRIDIS), (tile, tile), interpolation=cv2.INTER_NEAREST))
    return grid(tiles, cols=min(cols, len(tiles)))
