"""A semsim plug-in: the uncoded analog pixels baseline link (``uncoded-pixels``)."""

from semsim_uncoded_pixels.link import UncodedPixelsLink

__all__ = ["UncodedPixelsLink"]
