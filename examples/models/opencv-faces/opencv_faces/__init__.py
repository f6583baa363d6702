"""A Scivision-style face detector: OpenCV's pretrained frontal-face Haar cascade.

    model = HaarFaceDetector()
    model.predict(image)  # -> [{"x": 12, "y": 40, "width": 64, "height": 64}, ...]

`image` is what intake-xarray gives (an xarray.DataArray with dims y, x[, channel]), a
numpy array (HxW grey or HxWx3/4 RGB[A]), or a path to an image file. The cascade comes
from Debian's opencv-data package; set OPENCV_FACES_CASCADE to use another file.
"""

import os

import cv2
import numpy as np

__all__ = ["HaarFaceDetector", "DEFAULT_CASCADE"]

DEFAULT_CASCADE = "/usr/share/opencv4/haarcascades/haarcascade_frontalface_default.xml"


class HaarFaceDetector:
    """Detects frontal faces; predict returns one dict per face, largest first."""

    def __init__(self, cascade=None, scale_factor=1.1, min_neighbors=5, min_size=30):
        path = cascade or os.environ.get("OPENCV_FACES_CASCADE") or DEFAULT_CASCADE
        if not os.path.exists(path):
            raise FileNotFoundError(f"Haar cascade not found: {path} (Debian package opencv-data)")
        self._cascade = cv2.CascadeClassifier(path)
        if self._cascade.empty():
            raise ValueError(f"cannot load Haar cascade {path}")
        self.scale_factor = float(scale_factor)
        self.min_neighbors = int(min_neighbors)
        self.min_size = int(min_size)

    def predict(self, image):
        """Returns [{"x","y","width","height"}] boxes in pixels of the input image."""
        grey = _to_grey(image)
        faces = self._cascade.detectMultiScale(
            grey,
            scaleFactor=self.scale_factor,
            minNeighbors=self.min_neighbors,
            minSize=(self.min_size, self.min_size),
        )
        boxes = [
            {"x": int(x), "y": int(y), "width": int(w), "height": int(h)}
            for (x, y, w, h) in (faces if len(faces) else [])
        ]
        boxes.sort(key=lambda b: b["width"] * b["height"], reverse=True)
        return boxes


def _to_grey(image):
    if isinstance(image, (str, os.PathLike)):
        arr = cv2.imread(os.fspath(image), cv2.IMREAD_GRAYSCALE)
        if arr is None:
            raise ValueError(f"cannot decode image {os.fspath(image)}")
        return arr
    arr = np.asarray(getattr(image, "values", image))
    if arr.ndim == 2:
        grey = arr
    elif arr.ndim == 3 and arr.shape[2] in (3, 4):
        grey = cv2.cvtColor(arr[..., :3].astype(np.uint8, copy=False), cv2.COLOR_RGB2GRAY)
    elif arr.ndim == 3 and arr.shape[2] == 1:
        grey = arr[..., 0]
    else:
        raise ValueError(f"expected an HxW or HxWxC image, got shape {arr.shape}")
    if grey.dtype != np.uint8:
        grey = cv2.normalize(grey, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
    return grey
