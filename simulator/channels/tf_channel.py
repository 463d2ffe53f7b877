"""Channel type ``tf``: any TensorFlow callable ``(x, no) -> y`` as a semsim channel, through the DLPack bridge.

A scenario names the function by ``module:function``::

    channels:
      - {type: tf, function: simulator.channels.tf_channel:tf_awgn}
      - {type: tf, function: mypackage.channels:my_sionna1_channel}

The function's contract (all TensorFlow tensors, eager execution):

* ``x``: ``tf.complex64`` ``[batch, n]``, the transmitted symbols (unit average energy per example);
* ``no``: ``tf.float32`` ``[batch, 1]``, the noise variance **per complex symbol**, ``no = 10**(-snr_db/10)``
  (semsim's SNR is Es/N0 per complex channel use; ``no/2`` per real dimension; the same ``no`` as Sionna's
  ``AWGN`` block takes);
* returns ``y``: ``tf.complex64`` ``[batch, n]``, the (equalised) received symbols, or a pair ``(y, no_eff)`` where
  ``no_eff`` (float32, broadcastable to ``[batch, n]``) is the effective noise variance per symbol after
  equalisation. Without ``no_eff`` the receiver is told ``no``.

The call goes through :func:`simulator.interop.bridge.call_tf`, so the channel takes part in torch autograd: learned
transmitters train through it (gradients reach ``x`` through a ``tf.GradientTape``).

Randomness: the engine seeds Sionna's torch generator for every (channel, SNR point, Monte-Carlo batch)
(:func:`simulator.core.seeding.seeded`). Before each call this channel draws one 31-bit seed from that generator and
seeds TensorFlow with it: ``tf.random.set_seed`` (ops such as ``tf.random.normal``) and the global
``tf.random.Generator`` (``tf.random.get_global_generator()``). The same scenario therefore gives the same numbers.
Gradients are those of the forward pass's own draws (:func:`~simulator.interop.bridge.call_tf` keeps the forward's
``tf.GradientTape``; were the function rerun, the reseeding would redraw the same noise). A function that
keeps its own ``tf.random.Generator`` (or a Sionna 1.x block with its own generator) is not reseeded: seed it from
the global generator or pass its draws through the global one. Reseeding changes TensorFlow's global random
state, as ``tf.random.set_seed`` does.

TensorFlow is imported only when a ``tf`` channel is built (not when this module is imported).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pydantic import Field, field_validator

from simulator.core.channel import CHANNELS, Channel, ChannelOutput
from simulator.core.errors import UserError, one_line
from simulator.core.params import Params
from simulator.core.registry import import_attribute
from simulator.core.seeding import engine_generator
from simulator.core.snr import noise_variance

if TYPE_CHECKING:
    import torch

# torch and the bridge (which defines torch autograd functions) are imported when the channel runs, so that
# resolving the type (semsim validate, list) loads neither

_FUNCTION_PATH = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")
_CONTRACT = "a module:function path to a TensorFlow callable (x [batch, n] complex64, no [batch, 1] float32) -> y"


def resolve_function(path: str) -> Callable[..., Any]:
    """The callable ``path`` (``module:function``, or ``module:Class.method``) names, importing TensorFlow first.

    Every failure is one :class:`UserError` line naming the field ``function``.
    """
    from simulator.interop.bridge import import_tf

    import_tf()  # a BridgeError (UserError) telling how to install TensorFlow when it is missing
    where = f"channel tf: function {path!r}"
    target = import_attribute(path, where, f"; expected {_CONTRACT}")
    if not callable(target) or isinstance(target, type):
        raise UserError(f"{where}: {type(target).__name__} is not a function; expected {_CONTRACT}")
    return target


@CHANNELS.register("tf")
class TFChannel(Channel):
    """A TensorFlow function ``(x, no) -> y`` or ``(y, no_eff)`` (module:function), differentiable via DLPack.

    ``function`` receives ``x`` ``[batch, n]`` complex64 and ``no`` ``[batch, 1]`` float32 (noise variance per
    complex symbol, ``10**(-snr_db/10)``) as TensorFlow tensors and returns ``y`` ``[batch, n]`` complex64 or
    ``(y, no_eff)``. See the module docstring for seeding.

    Output: ``symbols = y`` ``[batch, n]``; ``no_eff`` ``[batch, n]`` (the function's, or ``no`` broadcast);
    ``raw = y``; ``state = {"no": [batch]}``.

    Example::

        channel = TFChannel(TFChannel.Params(function="simulator.channels.tf_channel:tf_awgn"))
        out = channel(torch.ones(4, 8, dtype=torch.complex64), torch.full((4,), 10.0))
        out.symbols.shape, out.no_eff[0, 0]   # (torch.Size([4, 8]), tensor(0.1000))
    """

    description = "A TensorFlow function (x, no) -> y given as module:function, through the DLPack bridge"

    class Params(Params):
        function: str = Field(description="module:function of a TensorFlow callable (x, no) -> y or (y, no_eff)")

        @field_validator("function")
        @classmethod
        def _module_path(cls, value: str) -> str:
            if not _FUNCTION_PATH.match(value):
                raise ValueError(f"{value!r} is not a module:function path (like mypackage.channels:awgn); "
                                 f"expected {_CONTRACT}")
            return value

    def __init__(self, params=None, device: str = "cpu"):
        if params is None:
            raise UserError("channel tf: the field `function` is required (" + _CONTRACT + ")")
        super().__init__(params, device)
        self.function = resolve_function(self.params.function)

    def _draw_seed(self) -> int:
        """One seed from Sionna's generator for this device (the generator the engine seeds per point)."""
        import torch

        generator = engine_generator(self.device)
        return int(torch.randint(0, 2**31 - 1, (1,), generator=generator, device=generator.device))

    def propagate(self, x: torch.Tensor, snr_db: torch.Tensor) -> ChannelOutput:
        from simulator.interop.bridge import call_tf, import_tf

        batch, n = x.shape
        no = noise_variance(snr_db)
        seed = self._draw_seed()
        tf = import_tf()
        path, fn = self.params.function, self.function

        def packed(x_tf, no_tf):
            """``fn`` reseeded, its output checked and packed as ``[batch, 2n]``: ``y`` then ``no_eff + 0j``."""
            tf.random.set_seed(seed)
            tf.random.get_global_generator().reset_from_seed(seed)
            try:
                out = fn(x_tf, no_tf)
            except UserError:
                raise
            except Exception as err:  # the user's function: one line naming it (SEMSIM_DEBUG=1 shows the cause)
                raise UserError(f"channel tf: function {path!r} raised {type(err).__name__}: "
                                f"{one_line(err)}") from err
            y, no_eff = _check_output(tf, path, out, batch, n)
            if no_eff is None:
                no_eff = tf.broadcast_to(no_tf, (batch, n))
            return tf.concat([y, tf.complex(no_eff, tf.zeros_like(no_eff))], axis=1)

        out = call_tf(packed, x, no[:, None].contiguous())
        y = out[:, :n]
        return ChannelOutput(symbols=y, no_eff=out[:, n:].real.contiguous(), raw=y, state={"no": no})


def _check_output(tf, path: str, out: Any, batch: int, n: int):
    """``(y, no_eff or None)`` from the function's return value, or a one-line :class:`UserError`."""
    where = f"channel tf: function {path!r}"
    no_eff = None
    if isinstance(out, tuple | list):
        if len(out) != 2:
            raise UserError(f"{where} returned {len(out)} values; expected y or (y, no_eff)")
        out, no_eff = out
    if not tf.is_tensor(out):
        raise UserError(f"{where} returned {type(out).__name__}; expected a tf.Tensor y [batch, n] complex64")
    if out.dtype != tf.complex64 or tuple(out.shape) != (batch, n):
        raise UserError(f"{where} returned y {tuple(out.shape)} {out.dtype.name}; expected [batch, n] = "
                        f"{[batch, n]} complex64")
    if no_eff is not None:
        no_eff = tf.convert_to_tensor(no_eff)
        if no_eff.dtype != tf.float32:
            raise UserError(f"{where} returned no_eff of dtype {no_eff.dtype.name}; expected float32")
        try:
            no_eff = tf.broadcast_to(no_eff, (batch, n))
        except Exception:
            raise UserError(f"{where} returned no_eff {tuple(no_eff.shape)}; expected a shape broadcastable to "
                            f"[batch, n] = {[batch, n]}") from None
    return out, no_eff


def tf_awgn(x, no):
    """Reference TensorFlow AWGN channel: ``y = x + sqrt(no/2) * (n1 + j n2)``, ``n1, n2 ~ N(0, 1)``.

    ``x`` ``[batch, n]`` tf.complex64, ``no`` ``[batch, 1]`` tf.float32 (noise variance per complex symbol);
    returns ``y`` ``[batch, n]`` tf.complex64. Pure TensorFlow (``tf.random.normal``), for
    ``{type: tf, function: simulator.channels.tf_channel:tf_awgn}``.
    """
    from simulator.interop.bridge import import_tf

    tf = import_tf()
    sigma = tf.sqrt(no / 2.0)
    noise = tf.complex(sigma * tf.random.normal(tf.shape(x)), sigma * tf.random.normal(tf.shape(x)))
    return x + noise
