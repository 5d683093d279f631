"""Opening H&E images with a decompression-bomb guard fit for whole-slide scans."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .._errors import InputError

#: the largest image opened (pixels): H&E scans exceed PIL's default guard (89 M), but a file that
#: claims more than this is refused as a decompression bomb (1e9 RGB pixels take 3 GB)
MAX_PIXELS = 1_000_000_000


@contextmanager
def open_image(path: str | Path, max_pixels: int = MAX_PIXELS) -> Iterator:
    """``PIL.Image.open`` with the guard at ``max_pixels``, checked on the size the file claims
    before anything is decoded; every failure is an :class:`InputError` naming the file."""
    import warnings

    from PIL import Image

    path = Path(path)
    if not path.is_file():
        raise InputError(f"image {path} not found")
    limit = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = max_pixels  # PIL itself refuses above twice that; the rest is checked here
    try:
        with warnings.catch_warnings(), Image.open(path) as im:
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our limit is checked below
            w, h = im.size
            if w * h > max_pixels:
                raise InputError(
                    f"image {path} claims {w} x {h} = {w * h:,} pixels, more than the {max_pixels:,} allowed",
                    "a decompression bomb, or a scan to downsample first (and its spot coordinates)",
                )
            yield im
    except InputError:
        raise
    except Image.DecompressionBombError as err:
        raise InputError(
            f"image {path}: {err}", "a decompression bomb, or a scan to downsample first"
        ) from None
    except (OSError, ValueError) as err:
        raise InputError(f"cannot read image {path}: {err}") from None
    finally:
        Image.MAX_IMAGE_PIXELS = limit
