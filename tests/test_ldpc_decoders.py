"""The numba LDPC decoder decodes Sionna's 5G codes as Sionna's LDPC5GDecoder does, with early stop.

Every comparison feeds both decoders the same LLRs (Sionna's logits, ``log p(1)/p(0)``, output-interleaved), made
with fixed seeds; Sionna runs on one thread (the test machines have two cores and other work on them).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import scenario_dict
from pydantic import ValidationError
from sionna.phy.fec.ldpc import LDPC5GDecoder, LDPC5GEncoder

from links.ldpc_cpu import NumbaLDPC5GDecoder, tanner_graph
from links.modem import CodedModem, build_ldpc_decoder, ldpc_decoder_for
from links.params import LDPCParams
from simulator.core.metrics import proportion_interval

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from ldpc_decoders import Code, make_llrs  # noqa: E402  (the benchmark's LLR source: one definition)

# (k, n, bits per symbol, Eb/N0 in dB where the channel makes raw errors and both decoders correct them all)
CODES = [
    pytest.param(512, 1024, 2, 3.0, id="bg2-k512-n1024-qpsk"),        # 128 filler bits, z = 64
    pytest.param(100, 300, 2, 3.0, id="bg2-k100-n300-qpsk"),          # k not a multiple of z = 18: 80 fillers
    pytest.param(768, 1024, 4, 7.5, id="bg1-k768-n1024-16qam"),       # base graph 1, rate 3/4, punctured
    pytest.param(1000, 1500, 6, 11.0, id="bg2-k1000-n1500-64qam"),    # 64-QAM output interleaver
    pytest.param(57, 120, 1, 4.0, id="bg2-k57-n120-bpsk"),            # odd k, BPSK (no interleaving)
]


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def llrs(k, n, m, ebno_db, codewords, seed=1):
    return make_llrs(Code("test", k, n, m, (ebno_db,)), ebno_db, codewords, seed)


def sionna_decode(encoder, llr, num_iter=20, cn_update="boxplus-phi"):
    params = LDPCParams(k=encoder.k, n=encoder.n, num_iter=num_iter, cn_update=cn_update, decoder="sionna")
    return build_ldpc_decoder(encoder, params, "sionna")(llr)


@pytest.mark.parametrize(("k", "n", "m", "ebno_db"), CODES)
def test_same_hard_decisions_as_sionna_noiseless_and_at_high_snr(k, n, m, ebno_db):
    encoder = LDPC5GEncoder(k, n, num_bits_per_symbol=m)
    decoder = NumbaLDPC5GDecoder(encoder)
    # noiseless: perfect LLRs of the transmitted codewords; both return the information bits within 2 iterations
    bits = torch.randint(0, 2, (16, k), generator=torch.Generator().manual_seed(k)).float()
    perfect = 8.0 * (2.0 * encoder(bits) - 1.0)
    assert torch.equal(decoder(perfect), bits)
    assert torch.equal(sionna_decode(encoder, perfect), bits)
    assert decoder.last_iterations.max() <= 2
    # AWGN: the channel's own hard decisions are wrong in many places; both decoders correct every codeword
    bits, llr = llrs(k, n, m, ebno_db, 32)
    raw_errors = int(((llr > 0).float() != encoder(bits)).sum())
    assert raw_errors > 32 * n * 0.005
    fast, reference = decoder(llr), sionna_decode(encoder, llr)
    assert torch.equal(fast, reference)
    assert torch.equal(fast, bits)
    assert 1 < decoder.last_iterations.mean() < 10  # early stop


def test_graph_is_sionnas_with_punctured_filler_and_interleaved_positions():
    encoder = LDPC5GEncoder(100, 300, num_bits_per_symbol=2)
    graph = tanner_graph(encoder)
    pcm = LDPC5GDecoder(encoder).pcm
    assert (graph["num_cn"], graph["num_vn"]) == pcm.shape
    assert len(graph["edge_vn"]) == pcm.nnz
    z, k_filler = encoder.z, encoder.k_filler
    assert graph["filler"] == (100, 100 + k_filler)
    channel_vn = graph["channel_vn"]
    assert len(set(channel_vn.tolist())) == 300  # every received bit feeds its own variable node ...
    assert channel_vn.min() == 2 * z  # ... none of the 2z punctured systematic bits ...
    assert not ((channel_vn >= 100) & (channel_vn < 100 + k_filler)).any()  # ... nor a filler bit
    # the full mother codeword (Sionna's encoder before rate matching; a private method) restricted to the
    # graph's variable nodes satisfies every check, and the received positions carry the transmitted bits
    bits = torch.randint(0, 2, (1, 100), generator=torch.Generator().manual_seed(3)).float()
    filled = torch.cat([bits, torch.zeros(1, encoder.k_ldpc - 100)], dim=1)
    mother = encoder._encode_fast(filled).reshape(-1).numpy().astype(np.int64)
    word = mother[:graph["num_vn"]]
    assert not ((pcm @ word) % 2).any()
    assert np.array_equal(word[channel_vn], encoder(bits)[0].numpy().astype(np.int64))
    assert not word[100:100 + k_filler].any()


def test_bler_agrees_with_sionna_in_the_waterfall():
    encoder = LDPC5GEncoder(512, 1024, num_bits_per_symbol=2)
    bits, llr = llrs(512, 1024, 2, 1.5, 200, seed=2)
    fast, reference = NumbaLDPC5GDecoder(encoder)(llr), sionna_decode(encoder, llr)
    fast_errors = int((fast != bits).any(dim=1).sum())
    reference_errors = int((reference != bits).any(dim=1).sum())
    assert reference_errors >= 6  # a point with errors to compare (BLER about 7 % here)
    low, high = proportion_interval(reference_errors, 200)
    assert low <= fast_errors / 200 <= high
    assert int((fast != reference).any(dim=1).sum()) <= 2  # the same codewords fail


@pytest.mark.parametrize("cn_update", ["offset-minsum", "normalized-minsum"])
def test_min_sum_rules_match_sionnas(cn_update):
    encoder = LDPC5GEncoder(512, 1024, num_bits_per_symbol=2)
    bits, llr = llrs(512, 1024, 2, 1.5, 64, seed=4)
    fast = NumbaLDPC5GDecoder(encoder, cn_update=cn_update)(llr)
    reference = sionna_decode(encoder, llr, cn_update=cn_update)
    assert int((reference != bits).any(dim=1).sum()) >= 4  # worse than boxplus here: errors to compare
    assert int((fast != reference).any(dim=1).sum()) <= 1


def test_early_stop_and_iteration_limit():
    encoder = LDPC5GEncoder(512, 1024, num_bits_per_symbol=2)
    noise = torch.randn(16, 1024, generator=torch.Generator().manual_seed(5))  # no codeword: never converges
    decoder = NumbaLDPC5GDecoder(encoder, num_iter=7)
    decoder(noise)
    assert (decoder.last_iterations == 7).all()
    bits, llr = llrs(512, 1024, 2, 2.5, 64)
    out = decoder(llr)
    assert decoder.last_iterations.max() <= 7
    # stopping early returns a codeword: the same as running all iterations (Sionna, 7 iterations)
    assert torch.equal(out, sionna_decode(encoder, llr, num_iter=7))


def test_result_does_not_depend_on_threads_batching_or_input_type():
    encoder = LDPC5GEncoder(768, 1024, num_bits_per_symbol=4)
    _, llr = llrs(768, 1024, 4, 5.5, 40, seed=6)  # waterfall: codewords stop at different iterations
    one = NumbaLDPC5GDecoder(encoder, threads=1)
    two = NumbaLDPC5GDecoder(encoder, threads=2)
    out = one(llr)
    iterations = one.last_iterations.copy()
    assert len(set(iterations.tolist())) > 3
    assert torch.equal(two(llr), out)
    assert np.array_equal(two.last_iterations, iterations)
    alone = torch.cat([one(llr[i:i + 1]) for i in range(0, 40, 7)])  # other lane companions
    assert torch.equal(alone, out[::7])
    shaped = one(llr.reshape(4, 10, 1024).numpy())
    assert isinstance(shaped, np.ndarray) and shaped.shape == (4, 10, 768)
    assert np.array_equal(shaped.reshape(40, 768), out.numpy())
    with pytest.raises(ValueError, match="n = 1024"):
        one(llr[:, :1000])


def test_decoder_setting():
    assert LDPCParams().decoder == "numba"
    assert CodedModem(2, LDPCParams(k=128, n=256)).decoder == "numba"
    assert isinstance(CodedModem(2, LDPCParams(k=128, n=256))._decoder, NumbaLDPC5GDecoder)
    modem = CodedModem(2, LDPCParams(k=128, n=256, decoder="sionna"))
    assert modem.decoder == "sionna" and isinstance(modem._decoder, LDPC5GDecoder)
    assert CodedModem(2, None).decoder is None
    # a CUDA device always decodes with Sionna
    assert ldpc_decoder_for("numba", "cuda:0") == "sionna"
    assert ldpc_decoder_for("numba", "cpu") == "numba"
    assert ldpc_decoder_for("sionna", "cpu") == "sionna"
    with pytest.raises(ValidationError, match="decoder"):
        LDPCParams(decoder="ldpc")
    with pytest.raises(ValueError, match="cn_update must be one of"):
        NumbaLDPC5GDecoder(LDPC5GEncoder(128, 256), cn_update="sum-product")


def test_digital_link_end_to_end_same_counts_as_sionna(run_dict):
    ldpc = {"k": 512, "n": 1024, "num_iter": 20}
    data = scenario_dict(
        # the engine draws the bits and the noise per batch and point, not per link: both links see the same LLRs
        links=[{"name": "fast", "type": "digital", "bits_per_symbol": 2, "ldpc": {**ldpc, "decoder": "numba"}},
               {"name": "reference", "type": "digital", "bits_per_symbol": 2,
                "ldpc": {**ldpc, "decoder": "sionna"}}],
        channels=[{"type": "awgn"}],
        snr_db=[1.5],  # Es/N0 = Eb/N0 for rate-1/2 QPSK: the waterfall (test_ldpc.py covers the error-free side)
        metrics=["ber", "bler"],
        monte_carlo={"batch_size": 100, "max_samples": 200, "target_errors": 0},
    )
    table = run_dict(data).table.set_index(["link", "snr_db", "metric"])
    count = table["count"]
    assert (table["trials"][("fast", 1.5, "bler")], table["trials"][("reference", 1.5, "bler")]) == (200, 200)
    assert count[("reference", 1.5, "bler")] >= 6
    assert abs(int(count[("fast", 1.5, "bler")]) - int(count[("reference", 1.5, "bler")])) <= 2
    # a failed codeword has at most ~20 % of its 512 bits wrong: the bit errors differ by at most two such
    assert abs(int(count[("fast", 1.5, "ber")]) - int(count[("reference", 1.5, "ber")])) <= 2 * 512 * 0.2
