"""Example TensorFlow channels for semsim's ``tf`` channel type (pure TensorFlow, no semsim imports).

A ``tf`` channel function takes ``x`` ``[batch, n]`` tf.complex64 (unit average energy per example) and ``no``
``[batch, 1]`` tf.float32, the noise variance per complex symbol (``no = 10**(-snr_db/10)``, Es/N0 per complex
channel use; ``no/2`` per real dimension), and returns ``y`` ``[batch, n]`` tf.complex64 or ``(y, no_eff)``.
Draw randomness from TensorFlow's global RNG (``tf.random.normal``, ``tf.random.get_global_generator()``): semsim
reseeds it before every call, so sweeps are reproducible and training can replay the draws for gradients.

Use from a scenario with this directory on ``PYTHONPATH``::

    channels:
      - {name: tf-awgn, type: tf, function: jscc_channels:awgn}
      - {name: tf-rayleigh, type: tf, function: jscc_channels:rayleigh_zf}
"""

import tensorflow as tf


def awgn(x: tf.Tensor, no: tf.Tensor) -> tf.Tensor:
    """``y = x + sqrt(no/2) * (n1 + j n2)``, ``n1, n2 ~ N(0, 1)`` i.i.d.; ``y`` ``[batch, n]`` complex64."""
    sigma = tf.sqrt(no / 2.0)
    return x + tf.complex(sigma * tf.random.normal(tf.shape(x)), sigma * tf.random.normal(tf.shape(x)))


def rayleigh_zf(x: tf.Tensor, no: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Fast flat Rayleigh fading with perfect-CSI zero forcing: ``y = h x + n``, ``h ~ CN(0, 1)`` per symbol.

    Returns ``(y / h, no / |h|^2)``: the equalised symbols ``[batch, n]`` complex64 and their effective noise
    variance ``[batch, n]`` float32 (what learned receivers and soft demappers use).
    """
    shape = tf.shape(x)
    h = tf.complex(tf.random.normal(shape), tf.random.normal(shape)) / tf.cast(tf.sqrt(2.0), tf.complex64)
    y = h * x + awgn(tf.zeros_like(x), no)
    gain = tf.math.real(h) ** 2 + tf.math.imag(h) ** 2
    return y / h, no / gain
