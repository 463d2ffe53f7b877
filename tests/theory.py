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


def qpsk_rician(ebno_db: float, k_factor_db: float) -> float:
    """QPSK over flat Rician fading with mean power 1 and perfect CSI (Simon & Alouini, the MGF of the Rician
    SNR in Craig's form of Q): ``Pb = 1/pi int_0^{pi/2} M(-1/sin^2 t) dt`` with mean SNR per bit ``gb``.

    ``K -> 0`` gives :func:`qpsk_rayleigh`, ``K -> inf`` gives :func:`qpsk_awgn`.
    """
    from scipy.integrate import quad

    k, gb = db(k_factor_db), db(ebno_db)

    def mgf(t: float) -> float:
        s = (1.0 + k) * math.sin(t) ** 2
        return s / (s + gb) * math.exp(-k * gb / (s + gb))

    return quad(mgf, 0.0, math.pi / 2, epsabs=1e-13, limit=200)[0] / math.pi
