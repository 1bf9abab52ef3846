"""The look's picture as a normalized tensor, for the ONNX-based backends.

Example:
    >>> mean, std = (0.48, 0.46, 0.41), (0.27, 0.26, 0.28)
    >>> x = image_tensor(request, 224, mean, std)  # doctest: +SKIP
    >>> x.shape  # doctest: +SKIP
    (224, 224, 3)
"""

from __future__ import annotations

import io

import numpy as np
import numpy.typing as npt
from PIL import Image

from operators.backends.base import LookRequest

FloatArray = npt.NDArray[np.float32]


def image_tensor(
    request: LookRequest,
    size: int,
    mean: tuple[float, float, float],
    std: tuple[float, float, float],
    resample: Image.Resampling = Image.Resampling.BILINEAR,
) -> FloatArray | None:
    """Return the look's frame (or, without one, its JPEG) as ``(size, size, 3)`` float32.

    Pixels are scaled to [0, 1], then ``(x - mean) / std`` per channel. A
    decoder frame is scaled in swscale; a JPEG with Pillow's ``resample``.
    Returns ``None`` when the look carries no picture.
    """
    if request.frame is not None:
        rgb = request.frame.to_rgb(size, size)
    elif request.jpeg is not None:
        with Image.open(io.BytesIO(request.jpeg)) as img:
            rgb = np.asarray(img.convert("RGB").resize((size, size), resample))
    else:
        return None
    m = np.asarray(mean, np.float32)
    s = np.asarray(std, np.float32)
    return ((rgb.astype(np.float32) / 255.0 - m) / s).astype(np.float32)
