"""The PyTorch <-> TensorFlow bridge: zero-copy per dtype, copies where sharing is impossible, gradients both ways
against finite differences, training through TensorFlow, one-line errors, and TensorFlow imported lazily."""

from __future__ import annotations

import atexit
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from simulator.interop import bridge
from simulator.interop.bridge import BridgeError, call_tf, import_tf, tf_wrap, to_tf, to_torch

REPO_ROOT = Path(__file__).resolve().parents[1]

# `semsim list` imports every link and channel (~10 s): started here, it runs beside this process's TF import
_LAZY_IMPORT_CODE = ("import sys, io, contextlib\n"
                     "import simulator, simulator.cli, simulator.interop.bridge\n"
                     "with contextlib.redirect_stdout(io.StringIO()):\n"
                     "    status = simulator.cli.main(['list'])\n"
                     "assert status in (0, None), status\n"
                     "assert 'tensorflow' not in sys.modules, 'tensorflow was imported'\n"
                     "print('ok')\n")
_LAZY_IMPORT_CHECK = subprocess.Popen([sys.executable, "-c", _LAZY_IMPORT_CODE], cwd=REPO_ROOT,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
atexit.register(lambda: _LAZY_IMPORT_CHECK.poll() is None and _LAZY_IMPORT_CHECK.kill())

tf = import_tf()

DTYPES = [pytest.param(d, id=str(d).removeprefix("torch.")) for d in bridge.ZERO_COPY_DTYPES]
BYTE_PATTERN = [0, 1] * 32  # 64 bytes; 0/1 bytes are valid for every dtype, bool included


def _tf_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def _fresh_tf(dtype: torch.dtype, n: int):
    """A TensorFlow tensor of ``n`` zeros of ``dtype`` in a buffer of its own (an op output, not a cached constant)."""
    return tf.cast(tf.fill([n], 0), _tf_name(dtype))


def _one_line(error: pytest.ExceptionInfo) -> str:
    message = str(error.value)
    assert "\n" not in message and message, message
    return message


# --- zero-copy ----------------------------------------------------------------------------------------------------
def test_shared_dtypes_are_zero_copy_dtypes():
    assert set(bridge.SHARED_DTYPES) <= set(bridge.ZERO_COPY_DTYPES)
    assert {torch.float32, torch.complex64, torch.bool, torch.uint8} <= set(bridge.ZERO_COPY_DTYPES)


@pytest.mark.parametrize("dtype", DTYPES)
def test_torch_to_tf_shares_memory(dtype):
    x = torch.zeros(64, dtype=dtype)
    n = 64 // x.element_size()
    x = x[:n]
    t = to_tf(x)
    assert t.dtype.name == _tf_name(dtype) and t.shape == (n,)
    assert to_torch(t).data_ptr() == x.data_ptr()  # TF's buffer is torch's
    x.view(torch.uint8).copy_(torch.tensor(BYTE_PATTERN, dtype=torch.uint8))  # write through torch ...
    assert t.numpy().tobytes() == bytes(BYTE_PATTERN)  # ... and TensorFlow sees it


@pytest.mark.parametrize("dtype", DTYPES)
def test_tf_to_torch_shares_memory(dtype):
    n = 64 // torch.empty((), dtype=dtype).element_size()
    t = _fresh_tf(dtype, n)
    y = to_torch(t)
    assert y.dtype == dtype and y.shape == (n,)
    assert to_torch(t).data_ptr() == y.data_ptr()
    y.view(torch.uint8).copy_(torch.tensor(BYTE_PATTERN, dtype=torch.uint8))
    assert t.numpy().tobytes() == bytes(BYTE_PATTERN)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64, torch.complex64,
                                   torch.complex128, torch.int8, torch.int32, torch.int64, torch.uint8, torch.bool])
@pytest.mark.parametrize("shape", [(), (0,), (5,), (2, 3, 4)], ids=["scalar", "empty", "vector", "3d"])
def test_round_trip_preserves_values(dtype, shape):
    g = torch.Generator().manual_seed(1)
    if dtype.is_floating_point or dtype.is_complex:
        x = torch.randn(shape, generator=g, dtype=dtype)
    elif dtype == torch.bool:
        x = torch.rand(shape, generator=g) > 0.5
    else:
        x = torch.randint(-100 if dtype.is_signed else 0, 100, shape, generator=g, dtype=dtype)
    t = to_tf(x)
    assert tuple(t.shape) == shape
    back = to_torch(t)
    assert back.dtype == dtype and back.shape == x.shape
    assert torch.equal(back, x)
    if dtype != torch.bfloat16:  # numpy has no bfloat16 of its own
        np.testing.assert_array_equal(t.numpy(), x.numpy())


def test_bool_round_trip_shares_and_tf_ops_read_it():
    x = torch.tensor([True, False, True, False])
    t = to_tf(x)
    x[1] = True
    assert t.numpy().tolist() == [True, True, True, False]
    assert int(tf.reduce_sum(tf.cast(tf.logical_not(t), tf.int32))) == 1


def test_converting_twice_gives_two_tensors_that_both_alias_the_source():
    x = torch.zeros(16)
    a, b = to_tf(x), to_tf(x)  # a fresh single-use capsule each time
    x[3] = 7.0
    assert a.numpy()[3] == 7.0 and b.numpy()[3] == 7.0
    t = tf.cast(tf.fill([16], 0), tf.float32)
    p, q = to_torch(t), to_torch(t)
    p[2] = 5.0
    assert q[2] == 5.0 and t.numpy()[2] == 5.0


def test_requires_grad_input_is_shared_without_its_graph():
    x = torch.zeros(16, requires_grad=True)
    t = to_tf(x)
    with torch.no_grad():
        x[0] = 3.0
    assert t.numpy()[0] == 3.0


# --- copies: non-contiguous, unaligned, lazy views ----------------------------------------------------------------
@pytest.mark.parametrize("make", [
    lambda: torch.arange(12.0).reshape(3, 4).t(),
    lambda: torch.arange(12.0)[::2],
    lambda: torch.arange(3.0).reshape(3, 1).expand(3, 4),
], ids=["transpose", "strided", "expand"])
def test_non_contiguous_is_copied_with_the_right_values(make):
    x = make()
    t = to_tf(x)
    np.testing.assert_array_equal(t.numpy(), x.numpy())
    assert not x.is_contiguous()
    y = to_torch(t)
    assert y.is_contiguous() and torch.equal(y, x)
    assert y.data_ptr() != x.data_ptr()  # a copy: documented


def test_aligned_slice_is_shared_and_unaligned_slice_is_copied():
    base = torch.arange(256.0)
    aligned = base[16:]  # 64 bytes in
    unaligned = base[1:]  # 4 bytes in: TF's kernels abort the process on such buffers
    assert aligned.data_ptr() % bridge.TF_ALIGNMENT == 0 and unaligned.data_ptr() % bridge.TF_ALIGNMENT != 0
    t_aligned, t_unaligned = to_tf(aligned), to_tf(unaligned)
    assert to_torch(t_aligned).data_ptr() == aligned.data_ptr()
    assert to_torch(t_unaligned).data_ptr() % bridge.TF_ALIGNMENT == 0
    assert float(tf.reduce_sum(t_unaligned)) == float(unaligned.sum())  # a TF kernel runs on it
    assert float(t_unaligned[0] + 1.0) == 2.0


def test_unaligned_numpy_backed_tensor_runs_in_tf_kernels():
    array = np.arange(1000, dtype=np.float32)
    offset = next(i for i in range(1, 64) if array[i:].ctypes.data % bridge.TF_ALIGNMENT)
    x = torch.from_numpy(array[offset:])
    assert float(tf.reduce_sum(to_tf(x))) == float(array[offset:].sum())


def test_lazy_conjugate_and_negative_views_are_materialised():
    z = torch.tensor([1 + 2j, 3 - 4j], dtype=torch.complex64)
    np.testing.assert_array_equal(to_tf(z.conj()).numpy(), np.conj(z.numpy()))
    negative_imag = z.conj().imag  # a real tensor with torch's negative bit set
    assert negative_imag.is_neg()
    np.testing.assert_array_equal(to_tf(negative_imag).numpy(), -z.imag.numpy())


# --- errors: one line, naming the dtype/device and what to do ------------------------------------------------------
@pytest.mark.parametrize("make, words", [
    (lambda: torch.zeros(3, dtype=torch.float8_e4m3fn), ["float8_e4m3fn", "float32"]),
    (lambda: torch.zeros(3, dtype=torch.complex32), ["complex32", "complex64"]),
], ids=["float8", "complex32"])
@pytest.mark.filterwarnings("ignore:ComplexHalf support is experimental")
def test_to_tf_rejects_dtypes_dlpack_cannot_carry(make, words):
    with pytest.raises(BridgeError) as error:
        to_tf(make())
    message = _one_line(error)
    assert all(word in message for word in words), message


@pytest.mark.parametrize("make, word", [
    (lambda: tf.constant(["a", "b"]), "string"),  # exporting it would abort the process
    (lambda: tf.constant([1, 2], tf.qint8), "qint8"),
], ids=["string", "qint8"])
def test_to_torch_rejects_tf_dtypes_dlpack_cannot_carry(make, word):
    with pytest.raises(BridgeError) as error:
        to_torch(make())
    message = _one_line(error)
    assert word in message and "tf.cast" in message


def test_wrong_argument_types_are_reported():
    with pytest.raises(BridgeError, match="to_tf expects a torch.Tensor, got list"):
        to_tf([1.0, 2.0])
    with pytest.raises(BridgeError, match="got a torch.Tensor"):
        to_torch(torch.zeros(2))
    with pytest.raises(BridgeError) as error:
        to_torch(object())
    assert "to_torch expects a TensorFlow tensor, got object" in _one_line(error)


def test_variables_and_arrays_are_read():
    v = tf.Variable([1.0, 2.0])
    assert torch.equal(to_torch(v), torch.tensor([1.0, 2.0]))
    assert torch.equal(to_torch(np.arange(3)), torch.arange(3))


def test_devices_other_than_cpu_and_cuda_are_refused():
    with pytest.raises(BridgeError) as error:
        to_tf(torch.empty(3, device="meta"))
    message = _one_line(error)
    assert "'meta'" in message and ".cpu()" in message


def test_cuda_tensor_needs_a_tensorflow_gpu(monkeypatch):
    # torch is CPU-only here, so the device decision is checked on its own (to_tf calls it for every non-CPU tensor)
    monkeypatch.setattr(bridge, "_tf_gpu_count", lambda: 0)
    with pytest.raises(BridgeError) as error:
        bridge.check_device_for_tf(torch.device("cuda:0"))
    message = _one_line(error)
    assert "'cuda:0'" in message and "no GPU" in message and "device: cpu" in message
    monkeypatch.setattr(bridge, "_tf_gpu_count", lambda: 1)
    bridge.check_device_for_tf(torch.device("cuda:0"))  # TF's GPU:0: accepted
    with pytest.raises(BridgeError) as error:
        bridge.check_device_for_tf(torch.device("cuda:1"))
    assert "'cuda:1'" in _one_line(error) and "only 1 GPU" in str(error.value)
    bridge.check_device_for_tf(torch.device("cpu"))


def test_gpu_count_and_cpu_tensors_stay_on_cpu():
    assert bridge._tf_gpu_count() == len(tf.config.list_physical_devices("GPU"))
    t = to_tf(torch.ones(2))
    assert "CPU" in t.device
    assert to_torch(t).device.type == "cpu"


def test_conversions_inside_tf_function_raise_a_one_line_bridge_error():
    x = torch.ones(2)

    def convert_torch():
        return to_tf(x)

    def convert_tf(t):
        return to_torch(t)

    wrapped = tf_wrap(lambda a: a * 2.0)

    def call_wrapped(t):
        return wrapped(t)

    for fn, args, name in [(convert_torch, (), "to_tf"), (convert_tf, (tf.ones(2),), "to_torch"),
                           (call_wrapped, (tf.ones(2),), "tf_wrap")]:
        with pytest.raises(BridgeError) as error:
            tf.function(fn)(*args)
        message = _one_line(error)
        assert name in message and "tf.function" in message and "eager" in message


def test_missing_tensorflow_says_how_to_install(monkeypatch):
    def no_tf(name):
        raise ImportError(f"No module named {name!r}")

    monkeypatch.setattr(bridge, "_TF", None)
    monkeypatch.setattr(bridge.importlib, "import_module", no_tf)
    with pytest.raises(BridgeError) as error:
        bridge.import_tf()
    assert "pip install -e '.[tf]'" in _one_line(error)


def test_import_tf_quiets_tensorflow_logs_unless_the_user_chose(monkeypatch):
    monkeypatch.setattr(bridge, "_TF", None)
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)
    assert bridge.import_tf() is tf
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "2"
    monkeypatch.setattr(bridge, "_TF", None)
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "0")
    bridge.import_tf()
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "0"


def test_semsim_import_and_list_do_not_import_tensorflow():
    stdout, stderr = _LAZY_IMPORT_CHECK.communicate(timeout=180)
    assert _LAZY_IMPORT_CHECK.returncode == 0 and stdout.strip() == "ok", stderr[-3000:]


# --- gradients: torch autograd through TensorFlow (call_tf) --------------------------------------------------------
def test_call_tf_real_gradients_match_finite_differences():
    g = torch.Generator().manual_seed(2)
    x = torch.randn(3, 4, generator=g, dtype=torch.float64, requires_grad=True)
    w = torch.randn(4, generator=g, dtype=torch.float64, requires_grad=True)

    def tf_fn(a, b, scale):
        return tf.tanh(a * b) * scale + tf.reduce_sum(a ** 2, axis=1, keepdims=True)

    assert torch.autograd.gradcheck(lambda a, b: call_tf(tf_fn, a, b, 0.5), (x, w))


def test_call_tf_complex_gradients_match_finite_differences():
    g = torch.Generator().manual_seed(3)
    z = torch.randn(5, generator=g, dtype=torch.complex128, requires_grad=True)
    h = torch.randn(5, generator=g, dtype=torch.complex128, requires_grad=True)

    def holomorphic(a, b):
        return a * b + tf.exp(a)

    def not_holomorphic(a, b):  # |a|^2 h + conj(a): what a channel with a power constraint looks like
        return tf.cast(tf.abs(a) ** 2, tf.complex128) * b + tf.math.conj(a)

    assert torch.autograd.gradcheck(lambda a, b: call_tf(holomorphic, a, b), (z, h))
    assert torch.autograd.gradcheck(lambda a, b: call_tf(not_holomorphic, a, b), (z, h))


def test_call_tf_complex_output_of_real_input_matches_finite_differences():
    x = torch.randn(4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda a: call_tf(lambda t: tf.complex(tf.cos(t), tf.sin(2.0 * t)), a), (x,))


def test_call_tf_several_outputs():
    x = torch.randn(6, dtype=torch.float64, requires_grad=True)

    def two(a):
        return tf.sin(a), tf.reduce_sum(a ** 3)

    assert torch.autograd.gradcheck(lambda a: call_tf(two, a), (x,))
    s, total = call_tf(two, x)
    assert torch.allclose(s, torch.sin(x)) and torch.allclose(total, (x ** 3).sum())


def test_call_tf_input_without_grad_and_integer_input():
    x = torch.randn(4, requires_grad=True)
    y = torch.randn(4)  # no grad
    k = torch.tensor([1, 2, 3, 4])  # integer: passes through, never differentiated

    def fn(a, b, n):
        return a * b * tf.cast(n, tf.float32)

    out = call_tf(fn, x, y, k)
    out.sum().backward()
    assert torch.allclose(x.grad, y * k)
    assert y.grad is None and k.grad is None


def test_call_tf_without_grad_needed_has_no_graph():
    x = torch.randn(3, requires_grad=True)
    with torch.no_grad():
        out = call_tf(tf.sin, x)
    assert not out.requires_grad and out.grad_fn is None
    assert not call_tf(tf.sin, torch.randn(3)).requires_grad


def test_call_tf_gradient_uses_the_forward_random_draw():
    # a fading channel drawn inside the TF function: the gradient must belong to the draw the forward used
    x = torch.randn(1000, dtype=torch.float64, requires_grad=True)
    y = call_tf(lambda t: t * tf.random.normal(tf.shape(t), dtype=tf.float64), x)
    y.sum().backward()
    assert torch.allclose(x.grad, y.detach() / x.detach())


def test_call_tf_retained_graph_backward_twice_and_tf_function_fn():
    x = torch.randn(5, dtype=torch.float64, requires_grad=True)

    @tf.function
    def compiled(t):
        return t ** 2

    y = call_tf(compiled, x)
    y.sum().backward(retain_graph=True)
    first = x.grad.clone()
    y.sum().backward()
    assert torch.allclose(first, 2 * x.detach()) and torch.allclose(x.grad, 4 * x.detach())


def test_call_tf_identity_output_does_not_alias_the_input():
    x = torch.zeros(4, requires_grad=True)
    out = call_tf(lambda t: t, x)
    with torch.no_grad():
        out[0] = 9.0
    assert x[0] == 0.0


def test_call_tf_detects_in_place_change_before_backward():
    x = torch.randn(4, requires_grad=True)
    y = x * 1.0
    out = call_tf(tf.sin, y)
    with torch.no_grad():
        y.add_(1.0)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        out.sum().backward()


def test_call_tf_rejects_a_non_callable():
    with pytest.raises(BridgeError, match="callable"):
        call_tf(torch.zeros(2), torch.zeros(2))


# --- gradients: TensorFlow gradients through torch (tf_wrap) ------------------------------------------------------
def _finite_difference_gradient(loss, z: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Central differences of a real scalar ``loss`` at ``z``: d/dRe + 1j d/dIm for complex ``z``."""
    grad = np.zeros_like(z)
    for i in range(z.size):
        step = np.zeros_like(z)
        step.flat[i] = eps
        grad.flat[i] = (loss(z + step) - loss(z - step)) / (2 * eps)
        if np.iscomplexobj(z):
            grad.flat[i] += 1j * (loss(z + 1j * step) - loss(z - 1j * step)) / (2 * eps)
    return grad


def _tape_gradient(fn, z: np.ndarray):
    t = tf.constant(z)
    with tf.GradientTape() as tape:
        tape.watch(t)
        loss = fn(t)
    return tape.gradient(loss, t).numpy()


def test_tf_wrap_real_gradient_matches_finite_differences():
    rng = np.random.default_rng(4)
    x0 = rng.standard_normal(6)
    w = torch.tensor(rng.standard_normal(6))
    torch_fn = tf_wrap(lambda a: torch.tanh(a * w) * a)

    def loss(t):
        return tf.reduce_sum(torch_fn(t) ** 2)

    expected = _finite_difference_gradient(lambda z: float(loss(tf.constant(z))), x0)
    np.testing.assert_allclose(_tape_gradient(loss, x0), expected, rtol=1e-6, atol=1e-8)


def test_tf_wrap_complex_gradient_matches_finite_differences_and_native_tf():
    rng = np.random.default_rng(5)
    z0 = rng.standard_normal(4) + 1j * rng.standard_normal(4)
    h = rng.standard_normal(4) + 1j * rng.standard_normal(4)
    h_torch = torch.tensor(h)
    torch_fn = tf_wrap(lambda a: a * h_torch + a.conj() * a * a)

    def bridged_loss(t):
        return tf.reduce_sum(tf.abs(torch_fn(t)) ** 2)

    def native_loss(t):
        return tf.reduce_sum(tf.abs(t * h + tf.math.conj(t) * t * t) ** 2)

    expected = _finite_difference_gradient(lambda z: float(bridged_loss(tf.constant(z))), z0)
    bridged = _tape_gradient(bridged_loss, z0)
    np.testing.assert_allclose(bridged, expected, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(bridged, _tape_gradient(native_loss, z0), rtol=1e-10)


def test_tf_wrap_integer_input_gets_no_gradient_and_variables_do():
    fn = tf_wrap(lambda a, n: a * n.to(a.dtype))
    v = tf.Variable([1.0, 2.0, 3.0])
    n = tf.constant([2, 3, 4])
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(fn(v, n))
    grad_v, grad_n = tape.gradient(loss, [v, n])
    np.testing.assert_allclose(grad_v.numpy(), [2.0, 3.0, 4.0])
    assert grad_n is None


def test_tf_wrap_several_outputs_and_unused_input():
    fn = tf_wrap(lambda a, b: (a * 3.0, a.sum() * 2.0))
    a, b = tf.constant([1.0, 2.0]), tf.constant([5.0])
    with tf.GradientTape() as tape:
        tape.watch([a, b])
        first, second = fn(a, b)
        loss = tf.reduce_sum(first) + second
    grad_a, grad_b = tape.gradient(loss, [a, b])
    np.testing.assert_allclose(grad_a.numpy(), [5.0, 5.0])
    assert grad_b is None
    np.testing.assert_allclose(first.numpy(), [3.0, 6.0])


def test_tf_wrap_keeps_tf_inputs_unchanged():
    def in_place(a, n):
        n += 1  # the integer input is a copy: TensorFlow's tensor must not change
        return a * n

    k = tf.constant([3], tf.int32) + 0  # an op output: a buffer of its own
    out = tf_wrap(in_place)(tf.constant([2.0]), k)
    assert k.numpy().tolist() == [3] and out.numpy().tolist() == [8.0]


# --- training through TensorFlow -----------------------------------------------------------------------------------
def test_torch_encoder_trained_through_a_tf_channel_lowers_its_loss():
    torch.manual_seed(0)
    tf.random.set_seed(0)
    encoder, decoder = torch.nn.Linear(4, 8), torch.nn.Linear(8, 4)
    params = [*encoder.parameters(), *decoder.parameters()]
    optimizer = torch.optim.Adam(params, lr=0.05)
    no = 0.1

    def tf_awgn(x, noise_var):  # complex baseband AWGN in TensorFlow, noise drawn inside (Es/N0 = 1/no)
        std = tf.cast(tf.sqrt(noise_var / 2.0), tf.float32)
        noise = tf.complex(tf.random.normal(tf.shape(x)) * std, tf.random.normal(tf.shape(x)) * std)
        return x + noise

    def step(data):
        z = encoder(data)
        symbols = torch.complex(z[:, :4], z[:, 4:])
        symbols = symbols / symbols.abs().pow(2).mean(dim=1, keepdim=True).sqrt()  # unit energy per example
        y = call_tf(tf_awgn, symbols, no)
        estimate = decoder(torch.cat([y.real, y.imag], dim=1))
        return torch.nn.functional.mse_loss(estimate, data)

    data = torch.randn(128, 4)
    with torch.no_grad():
        initial = float(step(data))
    for _ in range(60):
        optimizer.zero_grad()
        loss = step(data)
        loss.backward()
        optimizer.step()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in encoder.parameters())  # through TF
    with torch.no_grad():
        final = float(step(data))
    assert final < 0.3 * initial, (initial, final)
