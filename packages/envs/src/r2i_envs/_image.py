"""The ``image`` convention of every suite: ``size``×``size``×3 uint8 RGB (64 by default)."""

from __future__ import annotations

import numpy as np

from r2i_envs._deps import require

IMAGE_SIZE = 64


def rgb_image(frame: np.ndarray, size: int, extra: str) -> np.ndarray:
    """``frame`` (H×W×3, H×W×1 or H×W uint8) as a ``size``×``size``×3 uint8 image.

    Grey frames are repeated into three channels; other sizes are resized with area interpolation (OpenCV,
    which the suite's ``extra`` installs, imported only when a frame needs resizing).
    """
    frame = np.asarray(frame, np.uint8)
    if frame.ndim == 3 and frame.shape[-1] == 1:
        frame = frame[..., 0]
    if frame.shape[:2] != (size, size):
        cv2 = require("cv2", extra)
        frame = cv2.resize(frame, (size, size), interpolation=cv2.INTER_AREA)
    if frame.ndim == 2:
        frame = np.repeat(frame[..., None], 3, axis=-1)
    return np.ascontiguousarray(frame)
