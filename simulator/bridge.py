"""The PyTorch <-> TensorFlow bridge: tensors through DLPack without copying, and gradients across frameworks.

semsim's engine is PyTorch; TensorFlow components (Sionna 1.x channels, Keras JSCC models) reach it through this
module. TensorFlow is an optional extra (``pip install -e '.[tf]'``) imported only when a bridged component is used.

Tensors::

    tf_tensor = to_tf(torch_tensor)        # same memory for float16/32/64, int32/64, complex64/128 (CPU, or GPU)
    torch_tensor = to_torch(tf_tensor)     # likewise

Non-contiguous torch tensors are made contiguous first (a copy); ``bool`` goes through ``uint8`` (a copy, DLPack
between these versions cannot share it). Both sides end up on the same device.

Gradients::

    y = call_tf(tf_fn, x1, x2)             # torch autograd through a TensorFlow computation (tf.GradientTape)
    tf_fn_of_torch = tf_wrap(torch_fn)     # TF gradients through a PyTorch computation (tf.custom_gradient)

Both run eagerly: DLPack capsules cannot be made inside ``tf.function`` graphs (:class:`BridgeError` says so).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import torch
import torch.utils.dlpack

from simulator.errors import UserError


class BridgeError(UserError):
    """A tensor or call the bridge cannot handle; the message names the dtype/device and what to do."""


def import_tf():
    """The ``tensorflow`` module, or a :class:`BridgeError` telling how to install it."""
    try:
        return importlib.import_module("tensorflow")
    except ImportError:
        raise BridgeError("this component needs TensorFlow, which is not installed: "
                          "pip install -e '.[tf]' (tensorflow-cpu 2.20)") from None


#: torch dtypes DLPack shares between torch 2.13 and TF 2.20 without a copy
SHARED_DTYPES = (torch.float16, torch.float32, torch.float64, torch.int32, torch.int64, torch.complex64,
                 torch.complex128)


def to_tf(x: torch.Tensor):
    """``x`` as a ``tf.Tensor`` on the same device, sharing memory when the dtype allows (see module docs)."""
    tf = import_tf()
    if not tf.executing_eagerly():
        raise BridgeError("to_tf needs eager execution: DLPack cannot be used inside tf.function; call the bridge "
                          "outside the graph, or wrap the torch part with tf_wrap and run it eagerly")
    if x.dtype == torch.bool:
        return tf.cast(to_tf(x.to(torch.uint8)), tf.bool)
    if x.dtype not in SHARED_DTYPES and x.dtype != torch.uint8:
        raise BridgeError(f"to_tf: dtype {x.dtype} is not supported; use one of "
                          f"{', '.join(str(d) for d in SHARED_DTYPES)}, bool or uint8")
    x = x.detach().resolve_conj().resolve_neg()  # lazy conjugate/negative views cannot be exported
    if not x.is_contiguous():
        x = x.contiguous()
    return tf.experimental.dlpack.from_dlpack(torch.utils.dlpack.to_dlpack(x))


def to_torch(t) -> torch.Tensor:
    """``t`` (a ``tf.Tensor``) as a torch tensor on the same device, sharing memory when the dtype allows."""
    tf = import_tf()
    if not tf.executing_eagerly():
        raise BridgeError("to_torch needs eager execution: DLPack cannot be used inside tf.function")
    t = tf.convert_to_tensor(t)
    if t.dtype == tf.bool:
        return to_torch(tf.cast(t, tf.uint8)).bool()
    return torch.utils.dlpack.from_dlpack(tf.experimental.dlpack.to_dlpack(t))


class _TFFunction(torch.autograd.Function):
    """Forward: ``fn`` on TF views of the inputs; backward: a ``tf.GradientTape`` replayed on the same inputs."""

    @staticmethod
    def forward(ctx, fn: Callable[..., Any], *inputs: torch.Tensor) -> torch.Tensor:
        tf = import_tf()
        tf_inputs = [tf.Variable(to_tf(x), trainable=True) if x.requires_grad else to_tf(x) for x in inputs]
        ctx.fn, ctx.tf_inputs = fn, tf_inputs
        return to_torch(fn(*tf_inputs)).clone()

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):
        tf = import_tf()
        watched = [v for v in ctx.tf_inputs if isinstance(v, tf.Variable)]
        with tf.GradientTape() as tape:
            out = ctx.fn(*ctx.tf_inputs)
        # for complex tensors TF's and torch's vector-Jacobian products follow the same convention: no conjugation
        grads = iter(tape.gradient(out, watched, output_gradients=to_tf(grad_output)))
        result = []
        for x in ctx.tf_inputs:
            if isinstance(x, tf.Variable):
                g = next(grads)
                g = None if g is None else to_torch(g).clone()
                result.append(g)
            else:
                result.append(None)
        return (None, *result)


def call_tf(fn: Callable[..., Any], *inputs: torch.Tensor) -> torch.Tensor:
    """``fn`` (TF tensors -> one TF tensor) applied to torch tensors, differentiable in torch autograd.

    The backward pass reruns ``fn`` under a ``tf.GradientTape`` (random draws inside ``fn`` must be repeatable:
    seed them, or draw them outside and pass them as inputs).
    """
    return _TFFunction.apply(fn, *inputs)


def tf_wrap(fn: Callable[..., torch.Tensor]) -> Callable[..., Any]:
    """A TF function (eager) computing ``fn`` (torch tensors -> one torch tensor), differentiable in TF."""
    tf = import_tf()

    @tf.custom_gradient
    def wrapped(*tf_inputs):
        inputs = [to_torch(t).detach().clone().requires_grad_(t.dtype.is_floating or t.dtype.is_complex)
                  for t in tf_inputs]
        with torch.enable_grad():
            out = fn(*inputs)

        def grad(upstream):
            up = to_torch(upstream)
            grads = torch.autograd.grad(out, [x for x in inputs if x.requires_grad], up.to(out.dtype),
                                        allow_unused=True)
            result, it = [], iter(grads)
            for x in inputs:
                g = next(it) if x.requires_grad else None
                if g is None:
                    result.append(tf.zeros_like(to_tf(x.detach())))
                else:
                    result.append(to_tf(g))
            return result

        return to_tf(out.detach()), grad

    return wrapped
