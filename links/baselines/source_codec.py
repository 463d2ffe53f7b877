"""Source codecs of the ``separate`` link: an image in, a frame of at most ``max_bits`` bits out, and back.

Every codec turns one image ``[C, H, W]`` float32 in ``[0, 1]`` (C = 1 or 3) into a bit string that fits a
frame of ``max_bits`` bits, choosing its quality per image for that frame, and decodes a whole frame (the code
followed by padding) back into an image, or ``None`` when the frame cannot be decoded::

    codec = make_codec("jpeg")
    code = codec.encode(image, max_bits=1024)      # Encoded(bits [<= 1024] uint8 {0,1}, quality, scale)
    frame = pad(code.bits, 1024)
    image_hat = codec.decode(frame, image.shape)    # [C, H, W] float32 in [0, 1], or None

The codecs:

* ``raw``: uniform quantisation of every pixel to ``depth`` bits (1-8) after area downsampling by a factor
  ``scale`` (1, 2, 4, ... down to a 1x1 image). Each scale gets the deepest quantisation that fits the frame,
  and each image the scale whose reconstruction has the least squared error; the frame starts with the scale's
  index (2 bits for 8x8 images), the depth follows from the frame size. Decoding reconstructs the quantisation
  levels and upsamples bilinearly. Full size at 8 bits is lossless up to the 8-bit quantisation.
* ``jpeg`` and ``webp`` (Pillow; baseline JPEG with standard tables and 4:2:0 chroma subsampling for RGB,
  lossy WebP/VP8): at each scale (1, 2, 4, 8; area downsampling, bilinear upsampling at the receiver) the
  largest quality (1-100) whose stream fits is found by binary search, and each image gets the scale with the
  least squared error (scales are tried from full size down until the error grows). The receiver knows the image
  size and the codec, so only the per-image part of the stream is sent, behind a compact header
  ``[scale index: 2 bits][quality - 1: 7 bits][length in bytes]``: for JPEG the entropy-coded scan (the tables
  and frame headers are the standard ones of that quality and size: JPEG's *abbreviated format*, ITU-T T.81
  B.4), for WebP the VP8 key frame without the RIFF container, start code and dimensions. The receiver rebuilds
  the full stream and decodes it with Pillow; a stream Pillow rejects, or a header that makes no sense, decodes
  to ``None``. libjpeg conceals most damage to a scan instead of rejecting it, which is why the ``separate``
  link checks a CRC before the source decoder.
"""

from __future__ import annotations

import functools
import io
import math
from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from links.baselines.params import CodecName

#: downsampling factors the Pillow codecs try, in order (index sent in the header)
PILLOW_SCALES = (1, 2, 4, 8)
QUALITY_BITS = 7  # quality 1..100 sent as quality - 1
MAX_QUALITY = 100


@dataclass(frozen=True)
class Encoded:
    """One image's code: ``bits`` uint8 {0, 1} (at most the frame size), the chosen ``quality`` (JPEG/WebP
    quality, or the raw bit depth per pixel) and downsampling ``scale`` (1 = full size)."""

    bits: np.ndarray
    quality: int
    scale: int


class SourceCodec(ABC):
    """An image codec that fits each image into a frame of ``max_bits`` bits."""

    name: str

    @abstractmethod
    def encode(self, image: torch.Tensor, max_bits: int) -> Encoded | None:
        """``image`` ``[C, H, W]`` float32 in [0, 1] -> its code of at most ``max_bits`` bits, or ``None`` when
        no setting of the codec fits."""

    @abstractmethod
    def decode(self, frame: np.ndarray, shape: tuple[int, int, int]) -> torch.Tensor | None:
        """A whole frame (``max_bits`` uint8 {0, 1}: the code, then anything) -> image ``[C, H, W]`` float32 in
        [0, 1], or ``None`` when it cannot be decoded."""

    @abstractmethod
    def min_bits(self, image: torch.Tensor) -> int:
        """Smallest frame, in bits, into which ``image`` ``[C, H, W]`` can be coded."""

    def encode_batch(self, images: torch.Tensor, max_bits: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``images`` ``[B, C, H, W]`` -> frames ``[B, max_bits]`` uint8 (codes padded with zeros), qualities
        ``[B]`` and code lengths ``[B]`` in bits. An image that does not fit gets an all-zero frame and length 0
        (the Pillow codecs decode that frame to ``None``)."""
        frames = np.zeros((len(images), max_bits), dtype=np.uint8)
        quality = np.zeros(len(images), dtype=np.int64)
        used = np.zeros(len(images), dtype=np.int64)
        for i, image in enumerate(images):
            code = self.encode(image, max_bits)
            if code is None:
                continue
            frames[i, : len(code.bits)] = code.bits
            quality[i], used[i] = code.quality, len(code.bits)
        return frames, quality, used

    def decode_batch(self, frames: np.ndarray, shape: tuple[int, int, int]) -> tuple[torch.Tensor, np.ndarray]:
        """Frames ``[B, max_bits]`` -> images ``[B, C, H, W]`` (zeros where undecodable) and ``ok`` ``[B]`` bool."""
        images = torch.zeros(len(frames), *shape)
        ok = np.zeros(len(frames), dtype=bool)
        for i, frame in enumerate(frames):
            image = self.decode(frame, shape)
            if image is not None:
                images[i], ok[i] = image, True
        return images, ok


def make_codec(name: CodecName) -> SourceCodec:
    """The codec called ``name``."""
    return {"raw": RawCodec, "jpeg": JPEGCodec, "webp": WebPCodec}[name]()


def resample(images: torch.Tensor, size: tuple[int, int], down: bool) -> torch.Tensor:
    """``[B, C, h, w]`` -> ``[B, C, *size]``: area averaging when shrinking, bilinear when enlarging."""
    if tuple(images.shape[-2:]) == tuple(size):
        return images
    if down:
        return F.interpolate(images, size=size, mode="area")
    return F.interpolate(images, size=size, mode="bilinear", align_corners=False).clamp(0.0, 1.0)


#: Pillow save options besides the quality; JPEG: standard (not optimised) tables, so that headers are fixed
SAVE_OPTIONS = {"JPEG": {"subsampling": 2, "optimize": False, "progressive": False}, "WEBP": {"lossless": False}}


def _save(pil: Image.Image, format: str, quality: int) -> bytes:
    buffer = io.BytesIO()
    pil.save(buffer, format, quality=quality, **SAVE_OPTIONS[format])
    return buffer.getvalue()


def _to_pil(image: torch.Tensor) -> Image.Image:
    """``[C, H, W]`` float in [0, 1] (C = 1 or 3) -> an 8-bit Pillow image of mode L or RGB."""
    pixels = np.rint(image.detach().cpu().numpy().clip(0.0, 1.0) * 255).astype(np.uint8).transpose(1, 2, 0)
    return Image.fromarray(pixels[..., 0] if pixels.shape[-1] == 1 else pixels)


def _scaled_size(shape: tuple[int, ...], scale: int) -> tuple[int, int]:
    return math.ceil(shape[-2] / scale), math.ceil(shape[-1] / scale)


def _width(count: int) -> int:
    """Bits of a field that takes ``count`` values (0 for a single value)."""
    return (count - 1).bit_length()


def _uint_bits(values: np.ndarray, width: int) -> np.ndarray:
    """Non-negative integers ``[...]`` -> their ``width``-bit big-endian binary ``[..., width]`` uint8."""
    shifts = np.arange(width - 1, -1, -1, dtype=np.int64)
    return ((np.asarray(values, dtype=np.int64)[..., None] >> shifts) & 1).astype(np.uint8)


def _bits_uint(bits: np.ndarray) -> np.ndarray:
    """Inverse of :func:`_uint_bits` over the last axis."""
    width = bits.shape[-1]
    return (bits.astype(np.int64) << np.arange(width - 1, -1, -1, dtype=np.int64)).sum(axis=-1)


class RawCodec(SourceCodec):
    """Uniformly quantised pixels at the scale, chosen per image, that gives the least squared error."""

    name = "raw"

    @staticmethod
    def scales(shape: tuple[int, ...]) -> list[int]:
        """Downsampling factors 1, 2, 4, ... down to a 1x1 image, for images of ``shape`` ``[C, H, W]``."""
        scales = [1]
        while _scaled_size(shape, scales[-1]) != (1, 1):
            scales.append(2 * scales[-1])
        return scales

    def settings(self, shape: tuple[int, ...], max_bits: int) -> dict[int, tuple[int, int]]:
        """Header value -> ``(scale, depth)`` of every scale at which at least 1 bit per pixel fits, with the
        deepest quantisation (at most 8 bits) that fits."""
        header = _width(len(self.scales(shape)))
        found = {}
        for index, scale in enumerate(self.scales(shape)):
            h, w = _scaled_size(shape, scale)
            depth = min(8, (max_bits - header) // (shape[0] * h * w))
            if depth >= 1:
                found[index] = (scale, depth)
        return found

    def min_bits(self, image: torch.Tensor) -> int:
        return _width(len(self.scales(tuple(image.shape)))) + int(image.shape[0])  # header + a 1x1 image at 1 bit

    def encode(self, image: torch.Tensor, max_bits: int) -> Encoded | None:
        if not self.settings(tuple(image.shape), max_bits):
            return None
        frames, depth, used, scale = self._encode(image[None], max_bits)
        return Encoded(frames[0, : used[0]], quality=int(depth[0]), scale=int(scale[0]))

    def encode_batch(self, images: torch.Tensor, max_bits: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self._encode(images, max_bits)[:3]

    def _header(self, shape: tuple[int, ...]) -> int:
        return _width(len(self.scales(shape)))

    def _encode(self, images: torch.Tensor, max_bits: int) -> tuple[np.ndarray, ...]:
        """Frames ``[B, max_bits]``, depths ``[B]``, code lengths ``[B]`` and scales ``[B]`` of ``images``."""
        shape = tuple(images.shape[1:])
        settings = self.settings(shape, max_bits)
        if not settings:
            raise ValueError(f"images of shape {shape} do not fit {max_bits} bits")
        images = images.float().cpu().clamp(0.0, 1.0)
        codes, errors = {}, []
        for index, (scale, depth) in settings.items():
            levels = (1 << depth) - 1
            q = torch.round(resample(images, _scaled_size(shape, scale), down=True) * levels)
            errors.append((resample(q / levels, shape[-2:], down=False) - images).square().flatten(1).mean(dim=1))
            codes[index] = _uint_bits(q.to(torch.int64).flatten(1).numpy(), depth).reshape(len(images), -1)
        indices = list(settings)
        choice = [indices[i] for i in torch.stack(errors, dim=1).argmin(dim=1).tolist()]  # ties: the larger image
        header = self._header(shape)
        frames = np.zeros((len(images), max_bits), dtype=np.uint8)
        used = np.zeros(len(images), dtype=np.int64)
        for i, index in enumerate(choice):
            frames[i, :header] = _uint_bits(index, header)
            used[i] = header + codes[index].shape[1]
            frames[i, header : used[i]] = codes[index][i]
        scale, depth = (np.array([settings[index][j] for index in choice]) for j in (0, 1))
        return frames, depth, used, scale

    def decode(self, frame: np.ndarray, shape: tuple[int, int, int]) -> torch.Tensor | None:
        images, ok = self.decode_batch(frame[None], shape)
        return images[0] if ok[0] else None

    def decode_batch(self, frames: np.ndarray, shape: tuple[int, int, int]) -> tuple[torch.Tensor, np.ndarray]:
        settings = self.settings(shape, frames.shape[1])
        header = self._header(tuple(shape))
        indices = _bits_uint(frames[:, :header]) if header else np.zeros(len(frames), dtype=np.int64)
        images = torch.zeros(len(frames), *shape)
        ok = np.isin(indices, list(settings))
        for index, (scale, depth) in settings.items():
            rows = np.flatnonzero(indices == index)
            if not len(rows):
                continue
            h, w = _scaled_size(shape, scale)
            count = shape[0] * h * w
            q = _bits_uint(frames[rows, header : header + count * depth].reshape(len(rows), count, depth))
            small = torch.from_numpy(q.astype(np.float32) / ((1 << depth) - 1)).reshape(len(rows), shape[0], h, w)
            images[torch.from_numpy(rows)] = resample(small, shape[-2:], down=False)
        return images, ok


class PillowCodec(SourceCodec):
    """Quality search and the compact header shared by the JPEG and WebP codecs (see module docstring)."""

    format: str

    def _header_bits(self, max_bits: int) -> tuple[int, int]:
        """Bits of the scale index and of the byte length in a frame of ``max_bits``."""
        scale_bits = _width(len(PILLOW_SCALES))
        room = max(0, (max_bits - scale_bits - QUALITY_BITS) // 8)
        return scale_bits, max(1, room.bit_length())

    def _scales(self, shape: tuple[int, ...]) -> list[int]:
        """The scales of :data:`PILLOW_SCALES` that leave at least one pixel (all, for images of 8 pixels or more)."""
        return [s for s in PILLOW_SCALES if min(shape[-2:]) >= s]

    def _stream(self, image: torch.Tensor, scale: int, quality: int) -> bytes:
        """The per-image part of the stream of ``image`` at ``scale`` and ``quality``."""
        pil = _to_pil(image)
        h, w = _scaled_size(tuple(image.shape), scale)
        if scale > 1:
            pil = pil.resize((w, h), Image.Resampling.BOX)  # area averaging
        return self._strip(_save(pil, self.format, quality), pil.mode, pil.size, quality)

    @abstractmethod
    def _strip(self, data: bytes, mode: str, size: tuple[int, int], quality: int) -> bytes:
        """Full stream -> the part the receiver cannot rebuild (``size`` is PIL's ``(width, height)``)."""

    @abstractmethod
    def _rebuild(self, body: bytes, mode: str, size: tuple[int, int], quality: int) -> bytes:
        """Inverse of :meth:`_strip`."""

    def min_bits(self, image: torch.Tensor) -> int:
        scale_bits = _width(len(PILLOW_SCALES))
        smallest = min(len(self._stream(image, s, 1)) for s in self._scales(tuple(image.shape)))
        # the length field must count the bytes, which needs a wide enough field: grow until consistent
        bits = scale_bits + QUALITY_BITS + 8 * smallest
        while sum(self._header_bits(bits)) + 8 * smallest > bits:
            bits += 1
        return bits

    def encode(self, image: torch.Tensor, max_bits: int) -> Encoded | None:
        scale_bits, length_bits = self._header_bits(max_bits)
        room = (max_bits - scale_bits - QUALITY_BITS - length_bits) // 8
        if room < 1:
            return None
        shape = tuple(image.shape)
        best = None  # (error, index, quality, stream)
        for index, scale in enumerate(self._scales(shape)):
            found = self._best_quality(image, scale, room)
            if found is None:
                continue
            quality, stream = found
            error = float((self._reconstruct(stream, scale, quality, shape) - image.cpu()).square().mean())
            if best is not None and error >= best[0]:
                break  # the error grows again as the image shrinks further
            best = (error, index, quality, stream)
        if best is None:
            return None
        _, index, quality, stream = best
        body = np.frombuffer(stream, dtype=np.uint8)
        header = np.concatenate([_uint_bits(index, scale_bits), _uint_bits(quality - 1, QUALITY_BITS),
                                 _uint_bits(len(body), length_bits)])
        return Encoded(np.concatenate([header, np.unpackbits(body)]), quality=quality,
                       scale=self._scales(shape)[index])

    def _best_quality(self, image: torch.Tensor, scale: int, room: int) -> tuple[int, bytes] | None:
        """Binary search for the largest quality whose stream at ``scale`` has at most ``room`` bytes."""
        streams = {quality: self._stream(image, scale, quality) for quality in (1, MAX_QUALITY)}
        if len(streams[1]) > room:
            return None
        if len(streams[MAX_QUALITY]) <= room:
            return MAX_QUALITY, streams[MAX_QUALITY]
        low, high = 1, MAX_QUALITY  # invariant: low fits, high does not
        while high - low > 1:
            middle = (low + high) // 2
            streams[middle] = self._stream(image, scale, middle)
            if len(streams[middle]) <= room:
                low = middle
            else:
                high = middle
        return low, streams[low]

    def decode(self, frame: np.ndarray, shape: tuple[int, int, int]) -> torch.Tensor | None:
        scale_bits, length_bits = self._header_bits(len(frame))
        fields = np.split(frame[: scale_bits + QUALITY_BITS + length_bits], [scale_bits, scale_bits + QUALITY_BITS])
        index, quality, length = (int(_bits_uint(f)) if len(f) else 0 for f in fields)
        quality += 1
        start = scale_bits + QUALITY_BITS + length_bits
        scales = self._scales(shape)
        if index >= len(scales) or quality > MAX_QUALITY or length < 1 or start + 8 * length > len(frame):
            return None
        body = np.packbits(frame[start : start + 8 * length]).tobytes()
        return self._reconstruct(body, scales[index], quality, shape)

    def _reconstruct(self, body: bytes, scale: int, quality: int, shape: tuple[int, ...]) -> torch.Tensor | None:
        """The image ``[C, H, W]`` that a stream decodes to, or ``None`` if Pillow rejects it."""
        h, w = _scaled_size(shape, scale)
        mode = "L" if shape[0] == 1 else "RGB"
        try:
            with Image.open(io.BytesIO(self._rebuild(body, mode, (w, h), quality))) as pil:
                pil.load()
                if pil.size != (w, h):
                    return None
                pil = pil.convert(mode)
        except Exception:  # noqa: BLE001 (Pillow raises OSError, SyntaxError, ValueError... on corrupt streams)
            return None
        if pil.size != (shape[-1], shape[-2]):
            pil = pil.resize((shape[-1], shape[-2]), Image.Resampling.BILINEAR)
        pixels = np.asarray(pil, dtype=np.float32).reshape(shape[-2], shape[-1], -1) / 255.0
        return torch.from_numpy(pixels).permute(2, 0, 1).contiguous()


class JPEGCodec(PillowCodec):
    """Baseline JPEG with standard tables; the scan is sent, the tables and frame headers are rebuilt."""

    name = "jpeg"
    format = "JPEG"

    def _strip(self, data: bytes, mode: str, size: tuple[int, int], quality: int) -> bytes:
        header = _jpeg_header(mode, size, quality)
        if not data.startswith(header) or not data.endswith(b"\xff\xd9"):
            raise RuntimeError("Pillow wrote a JPEG header that depends on the image; cannot send it abbreviated")
        return data[len(header) : -2]

    def _rebuild(self, body: bytes, mode: str, size: tuple[int, int], quality: int) -> bytes:
        return _jpeg_header(mode, size, quality) + body + b"\xff\xd9"


@functools.lru_cache(maxsize=4096)
def _jpeg_header(mode: str, size: tuple[int, int], quality: int) -> bytes:
    """Everything up to the end of the start-of-scan segment: the same for every image of this size and quality."""
    data = _save(Image.new(mode, size), "JPEG", quality)
    sos = data.find(b"\xff\xda")
    return data[: sos + 2 + int.from_bytes(data[sos + 2 : sos + 4], "big")]


class WebPCodec(PillowCodec):
    """Lossy WebP (VP8 key frame); the frame tag and coded partitions are sent, the container is rebuilt."""

    name = "webp"
    format = "WEBP"
    START_CODE = b"\x9d\x01\x2a"

    def _strip(self, data: bytes, mode: str, size: tuple[int, int], quality: int) -> bytes:
        if data[:4] != b"RIFF" or data[8:16] != b"WEBPVP8 " or data[23:26] != self.START_CODE:
            raise RuntimeError("Pillow wrote a WebP stream other than a simple lossy VP8 key frame")
        chunk = data[20 : 20 + int.from_bytes(data[16:20], "little")]
        return chunk[:3] + chunk[10:]  # frame tag + partitions; start code and dimensions are known

    def _rebuild(self, body: bytes, mode: str, size: tuple[int, int], quality: int) -> bytes:
        chunk = body[:3] + self.START_CODE + size[0].to_bytes(2, "little") + size[1].to_bytes(2, "little") + body[3:]
        padded = chunk + b"\x00" * (len(chunk) % 2)
        return (b"RIFF" + (12 + len(padded)).to_bytes(4, "little") + b"WEBPVP8 " + len(chunk).to_bytes(4, "little")
                + padded)
