"""The PyTorch <-> TensorFlow bridge: tensors through DLPack without copying, and gradients across frameworks.

semsim's engine is PyTorch; TensorFlow components (Sionna 1.x channels, Keras JSCC models) reach it through this
module. TensorFlow is an optional extra (``pip install -e '.[tf]'``) imported only when a bridged component is used
(:func:`import_tf`; importing this module does not import TensorFlow).

Tensors::

    tf_tensor = to_tf(torch_tensor)        # same memory, same device (CPU, or GPU when TensorFlow has one)
    torch_tensor = to_torch(tf_tensor)     # likewise

Zero-copy (the two tensors share one buffer; writing through one is seen through the other) for every dtype in
:data:`ZERO_COPY_DTYPES`: float16/32/64, bfloat16, complex64/128, int8/16/32/64, uint8/16/32/64 and bool (measured
with torch 2.13 and TF 2.20). Copies are made, silently, only where sharing is impossible:

* non-contiguous torch tensors (transposes, strided slices, ``expand``) are made contiguous (TF has no strides);
* torch tensors whose data does not start on a 64-byte boundary (some slices, arrays from ``torch.from_numpy``)
  are copied to an aligned buffer: TensorFlow's kernels abort the process on unaligned buffers;
* lazily conjugated or negated torch views (``x.conj()``) are materialised.

Anything else fails with a :class:`BridgeError` naming the dtype or device and what to do: dtypes DLPack cannot
carry (torch float8/quantized/complex32, TF string/resource/variant/quantized), devices other than ``cpu`` and
``cuda``, a ``cuda`` tensor when TensorFlow sees no GPU, a CUDA TensorFlow tensor when torch has no CUDA, and any
conversion inside ``tf.function`` (DLPack capsules exist only in eager mode). Each conversion makes a fresh
DLPack capsule: capsules are single-use, and converting the same tensor twice gives two tensors that both alias it.
A ``tf.Variable`` is read (its current buffer, shared until the variable is next assigned: treat it as read-only).
On a GPU the same DLPack paths apply (untested here: the ``tf`` extra is tensorflow-cpu); TensorFlow keeps some
int32 results of GPU computations in host memory, and those arrive in torch on the CPU.

Gradients::

    y = call_tf(tf_fn, x1, x2)             # torch autograd through a TensorFlow computation (tf.GradientTape)
    tf_fn_of_torch = tf_wrap(torch_fn)     # TF gradients through a PyTorch computation (tf.custom_gradient)

Both are called eagerly (the TensorFlow function given to ``call_tf`` may itself be a ``tf.function``). For
complex tensors TensorFlow's and torch's vector-Jacobian products follow the same convention
(checked against finite differences): no conjugation is needed in either direction.
"""

from __future__ import annotations

import functools
import importlib
import os
from collections.abc import Callable
from typing import Any

import torch
import torch.utils.dlpack
from torch.autograd.function import once_differentiable

from simulator.core.errors import UserError


class BridgeError(UserError):
    """A tensor or call the bridge cannot handle; the message names the dtype/device and what to do."""

    #: raised inside tf.function tracing, it reaches the user unchanged (AutoGraph would rewrite it into a
    #: multi-line "in user code" message)
    ag_pass_through = True


_TF = None  # the tensorflow module, once imported


def import_tf():
    """The ``tensorflow`` module, or a :class:`BridgeError` telling how to install it.

    Sets ``TF_CPP_MIN_LOG_LEVEL=2`` (TensorFlow's C++ info and warning lines off) before the first import, unless
    the user has set it.
    """
    global _TF
    if _TF is None:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        try:
            _TF = importlib.import_module("tensorflow")
        except ImportError:
            raise BridgeError("this component needs TensorFlow, which is not installed: "
                              "pip install -e '.[tf]' (tensorflow-cpu 2.20)") from None
    return _TF


#: the numeric torch dtypes semsim's components exchange; all of them cross without a copy
SHARED_DTYPES = (torch.float16, torch.float32, torch.float64, torch.int32, torch.int64, torch.complex64,
                 torch.complex128)

#: every torch dtype the bridge passes without a copy, both ways (torch 2.13 and TF 2.20, measured)
ZERO_COPY_DTYPES = (*SHARED_DTYPES, torch.bfloat16, torch.int8, torch.int16, torch.uint8, torch.uint16,
                    torch.uint32, torch.uint64, torch.bool)
_ZERO_COPY = frozenset(ZERO_COPY_DTYPES)
_TF_EXPORTABLE = frozenset(("float16", "bfloat16", "float32", "float64", "complex64", "complex128", "int8", "int16",
                            "int32", "int64", "uint8", "uint16", "uint32", "uint64", "bool"))

#: byte alignment TensorFlow's kernels require of a tensor's buffer (EIGEN_MAX_ALIGN_BYTES of its builds)
TF_ALIGNMENT = 64

_EAGER_ONLY = ("DLPack capsules exist only in eager mode: call the bridge outside tf.function (run the TF part "
               "eagerly), or keep the bridged computation out of the compiled graph")


def _dtype_list() -> str:
    return ", ".join(str(d).removeprefix("torch.") for d in ZERO_COPY_DTYPES)


@functools.cache
def _tf_gpu_count() -> int:
    return len(import_tf().config.list_physical_devices("GPU"))


def check_device_for_tf(device: torch.device) -> None:
    """Raise a :class:`BridgeError` unless TensorFlow can hold a tensor that lives on torch ``device``."""
    if device.type == "cpu":
        return
    if device.type != "cuda":
        raise BridgeError(f"to_tf: tensor on device '{device}'; the bridge shares cpu and cuda tensors only: "
                          "move it with .cpu() (a copy) first")
    index = device.index
    if index is None:
        index = torch.cuda.current_device() if torch.cuda.is_available() else 0
    gpus = _tf_gpu_count()
    if gpus == 0:
        raise BridgeError(f"to_tf: tensor on '{device}' but TensorFlow sees no GPU (tensorflow-cpu, or no CUDA "
                          "build of TensorFlow): install one (pip install 'tensorflow[and-cuda]==2.20.*') or "
                          "run the scenario with device: cpu")
    if index >= gpus:
        raise BridgeError(f"to_tf: tensor on '{device}' but TensorFlow sees only {gpus} GPU(s) (GPU:0.."
                          f"GPU:{gpus - 1}): use a device TensorFlow sees, or align CUDA_VISIBLE_DEVICES")


def _fast_tf():
    """Per-call helpers resolved once: (tf, eager check, EagerTensor type, exportable dtype enums)."""
    global _FAST
    if _FAST is None:
        tf = import_tf()
        try:  # the public tf.executing_eagerly costs ~1.5 us a call, the context's own check ~0.8 us
            from tensorflow.python.eager.context import executing_eagerly
            from tensorflow.python.framework.ops import EagerTensor
        except ImportError:  # pragma: no cover - TF reorganised its internals
            executing_eagerly, EagerTensor = tf.executing_eagerly, type(tf.constant(0))
        exportable = frozenset(tf.as_dtype(name).as_datatype_enum for name in _TF_EXPORTABLE)
        _FAST = (tf, executing_eagerly, EagerTensor, exportable)
    return _FAST


_FAST = None


def to_tf(x: torch.Tensor):
    """``x`` (a torch tensor, any shape) as a ``tf.Tensor`` of the same shape, dtype and device.

    Shares memory for :data:`ZERO_COPY_DTYPES`; copies only non-contiguous, unaligned or lazily conjugated inputs
    (see the module docs). ``requires_grad`` is dropped (use :func:`call_tf` for gradients). Eager mode only.
    """
    tf, executing_eagerly, _, _ = _FAST or _fast_tf()
    if not isinstance(x, torch.Tensor):
        raise BridgeError(f"to_tf expects a torch.Tensor, got {type(x).__name__}")
    if not executing_eagerly():
        raise BridgeError(f"to_tf called inside tf.function: {_EAGER_ONLY}")
    if x.dtype not in _ZERO_COPY:
        raise BridgeError(f"to_tf: dtype {x.dtype} cannot cross DLPack to TensorFlow; convert it first "
                          f"(for example .to(torch.float32)) to one of: {_dtype_list()}")
    if not x.is_cpu:
        check_device_for_tf(x.device)
    if x.requires_grad:
        x = x.detach()
    if x.is_conj() or x.is_neg():
        # lazy conjugate/negative views (x.conj(), z.conj().imag): torch would export the unconjugated buffer
        x = x.resolve_conj().resolve_neg()  # a copy
    if not x.is_contiguous():
        x = x.contiguous()  # a copy into fresh (aligned) memory
    elif x.data_ptr() % TF_ALIGNMENT and x.numel():
        x = x.clone()  # fresh allocations are aligned (torch's CPU allocator: 64 bytes, CUDA: 512)
    # a fresh capsule per call: capsules are single-use
    return tf.experimental.dlpack.from_dlpack(torch.utils.dlpack.to_dlpack(x))


def to_torch(t) -> torch.Tensor:
    """``t`` (a ``tf.Tensor``, ``tf.Variable`` or anything ``tf.convert_to_tensor`` takes) as a torch tensor.

    Same shape, dtype and device; shares memory for the dtypes in :data:`ZERO_COPY_DTYPES`. Eager mode only.
    TensorFlow keeps some int32 tensors of GPU computations in host memory: those arrive on the CPU.
    """
    tf, executing_eagerly, eager_tensor, exportable = _FAST or _fast_tf()
    if not isinstance(t, eager_tensor):  # an eager tensor holds a value: it converts in any mode
        if not executing_eagerly():
            raise BridgeError(f"to_torch called inside tf.function: {_EAGER_ONLY}")
        if isinstance(t, torch.Tensor):
            raise BridgeError("to_torch expects a TensorFlow tensor, got a torch.Tensor (already on the torch side)")
        try:
            t = tf.convert_to_tensor(t)
        except (TypeError, ValueError) as error:
            message = str(error).splitlines()[0] if str(error) else ""
            raise BridgeError(f"to_torch expects a TensorFlow tensor, got {type(t).__name__} ({message})") from None
    if t._datatype_enum() not in exportable:  # exporting e.g. a string tensor aborts the process in TF 2.20
        raise BridgeError(f"to_torch: TensorFlow dtype {t.dtype.name} cannot cross DLPack; cast it in TensorFlow "
                          f"first (tf.cast) to one of: {', '.join(sorted(_TF_EXPORTABLE))}")
    capsule = tf.experimental.dlpack.to_dlpack(t)
    try:
        return torch.utils.dlpack.from_dlpack(capsule)
    except RuntimeError as error:  # e.g. a CUDA tensor with a CPU-only torch build
        raise BridgeError(f"to_torch: cannot import a {t.dtype.name} tensor on {t.device} into torch "
                          f"({str(error).splitlines()[0]}): use a torch build for that device, or move the "
                          "tensor in TensorFlow (with tf.device('/CPU:0'): tf.identity(t)) first") from None


# --- gradients: torch autograd through TensorFlow ------------------------------------------------------------------
def _differentiable(dtype) -> bool:
    return dtype.is_floating_point or dtype.is_complex


def _aliases(out: torch.Tensor, inputs: list) -> bool:
    """Whether ``out``'s data lies inside the storage of one of the torch ``inputs``."""
    ptr = out.data_ptr()
    for x in inputs:
        if isinstance(x, torch.Tensor):
            start = x.untyped_storage().data_ptr()
            if start <= ptr < start + x.untyped_storage().nbytes():
                return True
    return False


class _TFFunction(torch.autograd.Function):
    """Forward: ``fn`` on TF views of the inputs, recorded on a ``tf.GradientTape`` when a gradient is wanted;
    backward: that tape's vector-Jacobian product (the forward's own random draws, no rerun)."""

    @staticmethod
    def forward(ctx, fn: Callable[..., Any], *inputs):
        tf = import_tf()
        tensors = [x for x in inputs if isinstance(x, torch.Tensor)]
        tf_inputs = [to_tf(x) if isinstance(x, torch.Tensor) else x for x in inputs]
        needs = ctx.needs_input_grad[1:]
        positions = [i for i, (x, need) in enumerate(zip(inputs, needs, strict=True))
                     if need and isinstance(x, torch.Tensor) and _differentiable(x.dtype)]
        watched = [tf_inputs[i] for i in positions]
        ctx.tape = None
        if watched:
            # persistent: torch may ask for several vector-Jacobian products (retain_graph, gradcheck)
            ctx.tape = tf.GradientTape(persistent=True, watch_accessed_variables=False)
            with ctx.tape:
                for t in watched:
                    ctx.tape.watch(t)
                tf_out = fn(*tf_inputs)
        else:
            tf_out = fn(*tf_inputs)
        ctx.multiple = isinstance(tf_out, (tuple, list))
        tf_outs = [t if isinstance(t, tf.Tensor) else tf.convert_to_tensor(t)
                   for t in (tf_out if ctx.multiple else [tf_out])]
        outs = []
        for t in tf_outs:
            out = to_torch(t)
            outs.append(out.clone() if _aliases(out, tensors) else out)
        ctx.tf_outputs, ctx.watched, ctx.watch_positions, ctx.needs = tf_outs, watched, positions, needs
        ctx.mark_non_differentiable(*[o for o in outs if not _differentiable(o.dtype)])
        # torch checks these for in-place changes before backward (TF's saved tensors alias their memory)
        ctx.save_for_backward(*tensors, *outs)
        return tuple(outs) if ctx.multiple else outs[0]

    @staticmethod
    @once_differentiable
    def backward(ctx, *grad_outputs):
        tf = import_tf()
        ctx.saved_tensors  # noqa: B018 - raises if an input or output was modified in place since the forward
        result: list = [None] * len(ctx.needs)
        targets, upstream = [], []
        for t, g in zip(ctx.tf_outputs, grad_outputs, strict=True):
            if g is not None and (t.dtype.is_floating or t.dtype.is_complex):
                targets.append(t)
                upstream.append(to_tf(g))
        if ctx.tape is not None and targets:
            # TF's and torch's vector-Jacobian products agree for complex tensors too: no conjugation
            grads = ctx.tape.gradient(targets, ctx.watched, output_gradients=upstream)
            for position, g in zip(ctx.watch_positions, grads, strict=True):
                if g is not None:
                    result[position] = to_torch(tf.convert_to_tensor(g))
        return (None, *result)


def call_tf(fn: Callable[..., Any], *inputs):
    """``fn`` (TensorFlow tensors -> a TF tensor, or a tuple of them) applied to ``inputs``, differentiable in torch.

    Torch tensor inputs reach ``fn`` as TF tensors sharing their memory; other inputs (Python numbers, strings)
    pass through unchanged. Returns a torch tensor (a tuple of them when ``fn`` returns a tuple or list), sharing
    memory with ``fn``'s output. When torch needs a gradient (an input requires grad and grad mode is on), ``fn``
    runs under a persistent ``tf.GradientTape`` and backward takes that tape's vector-Jacobian product: random
    draws made inside ``fn`` are the forward's own, and gradients flow only to float and complex inputs. The tape
    (and the forward's intermediate tensors) lives as long as torch's graph; backward may run several times
    (``retain_graph=True``) but is not itself differentiable (no ``create_graph``). The call itself runs eagerly;
    ``fn`` may be a compiled ``tf.function``.
    """
    if not callable(fn):
        raise BridgeError(f"call_tf expects a callable first, got {type(fn).__name__}")
    return _TFFunction.apply(fn, *inputs)


# --- gradients: TensorFlow gradients through torch -------------------------------------------------------------------
def tf_wrap(fn: Callable[..., torch.Tensor]) -> Callable[..., Any]:
    """A TensorFlow function computing ``fn`` (torch tensors -> a torch tensor, or a tuple), differentiable in TF.

    The returned callable takes TF tensors (or anything ``tf.convert_to_tensor`` takes, ``tf.Variable`` included)
    and returns TF tensors. ``fn`` gets torch tensors: float and complex ones as fresh leaves with
    ``requires_grad=True`` (sharing memory with the TF inputs), the others as copies without gradient. A TF
    gradient through the result runs ``torch.autograd.grad`` on ``fn``'s graph; non-float inputs get no gradient
    (``None``). Eager mode only: inside ``tf.function`` it raises :class:`BridgeError`.
    """
    tf = import_tf()

    @tf.custom_gradient
    def _bridged(*tf_inputs):
        inputs = []
        for t in tf_inputs:
            x = to_torch(t)
            # a fresh leaf per input; non-differentiable ones are copied so that fn cannot write into TF's memory
            inputs.append(x.detach().requires_grad_() if _differentiable(x.dtype) else x.clone())
        with torch.enable_grad():
            out = fn(*inputs)
        multiple = isinstance(out, (tuple, list))
        outs = list(out) if multiple else [out]
        for o in outs:
            if not isinstance(o, torch.Tensor):
                raise BridgeError(f"tf_wrap: the wrapped function must return torch tensors, got {type(o).__name__}")

        def grad(*upstream):
            pairs = [(o, u) for o, u in zip(outs, upstream, strict=True) if u is not None and o.requires_grad]
            wanted = [x for x in inputs if x.requires_grad]
            grads = iter(torch.autograd.grad([o for o, _ in pairs], wanted,
                                             [to_torch(u).to(o.dtype) for o, u in pairs], allow_unused=True,
                                             retain_graph=True)
                         if pairs and wanted else [None] * len(wanted))
            result = []
            for x in inputs:
                g = next(grads) if x.requires_grad else None
                result.append(None if g is None else to_tf(g))
            return result

        tf_outs = [to_tf(o.detach()) for o in outs]
        return (tuple(tf_outs) if multiple else tf_outs[0]), grad

    @functools.wraps(fn)
    def wrapped(*args):
        if not tf.executing_eagerly():
            raise BridgeError(f"a tf_wrap function was called inside tf.function: {_EAGER_ONLY}")
        # tensors (variables read) before custom_gradient sees them: a variable's gradient flows through its read
        return _bridged(*[tf.convert_to_tensor(a) for a in args])

    return wrapped
