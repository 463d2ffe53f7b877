"""Closed-form bit error rates (Gray mapping, coherent detection), from design.md section 6.

``gb`` is Eb/N0 as a linear ratio; ``Q(x) = erfc(x / sqrt 2) / 2``.
"""

import math


def q(x: float) -> float:
    return 0.5 * math.erfc(x / math.sqrt(2.0))


def db(x_db: float) -> float:
    return 10.0 ** (x_db / 10.0)


def qpsk_awgn(ebno_db: float) -> float:
    return q(math.sqrt(2.0 * db(ebno_db)))


def qam16_awgn(ebno_db: float) -> float:
    a = math.sqrt(4.0 * db(ebno_db) / 5.0)
    return (3.0 * q(a) + 2.0 * q(3.0 * a) - q(5.0 * a)) / 4.0


def _rayleigh_f(c: float, mean_gb: float) -> float:
    return (1.0 - math.sqrt(c * mean_gb / (2.0 + c * mean_gb))) / 2.0


def qpsk_rayleigh(ebno_db: float) -> float:
    return _rayleigh_f(2.0, db(ebno_db))


def qam16_rayleigh(ebno_db: float) -> float:
    g = db(ebno_db)
    return (3.0 * _rayleigh_f(4.0 / 5.0, g) + 2.0 * _rayleigh_f(36.0 / 5.0, g) - _rayleigh_f(20.0, g)) / 4.0
