"""Weight and KV storage formats: bits per parameter including quantization scales.

INT8 symmetric with group size 32 and FP16 scales: 8 + 16/32 = 8.5 bit (paper). A bit-sliced
INT8 weight splits into an MSB slice of ``b`` bits that carries the scale (b + 0.5 bit, assumed:
the scale travels with the MSB so that the draft can run from HB alone) and an LSB slice of 8 - b
bits. MXFP4 (GPT-OSS experts): 4 + 8/32 = 4.25 bit. BF16: 16 bit. Bits become bytes only here.
"""

from __future__ import annotations

import numpy as np

from elmoe_dse.errors import KnobError
from elmoe_dse.units import BITS_PER_BYTE

GROUP_SIZE = 32
FP16_SCALE_BITS = 16.0
E8M0_SCALE_BITS = 8.0

WEIGHT_BITS: dict[str, float] = {
    "int8": 8.0 + FP16_SCALE_BITS / GROUP_SIZE,
    "mxfp4": 4.0 + E8M0_SCALE_BITS / GROUP_SIZE,
    "bf16": 16.0,
}
KV_BITS: dict[str, float] = {"fp16": 16.0, "bf16": 16.0, "int8": 8.0 + FP16_SCALE_BITS / GROUP_SIZE}

#: Compute precision (weights x activations) of a GEMM on weights of each format.
WEIGHT_PRECISION: dict[str, str] = {"int8": "w8a8", "mxfp4": "w4a8", "bf16": "w16a16"}
KV_PRECISION: dict[str, str] = {"fp16": "w16a16", "bf16": "w16a16", "int8": "w8a8"}


def weight_bytes_per_param(fmt: str) -> float:
    """Bytes per parameter of a weight format, scales included."""
    try:
        return WEIGHT_BITS[fmt] / BITS_PER_BYTE
    except KeyError:
        raise KnobError(
            f"unknown weight_format '{fmt}'; use one of {', '.join(WEIGHT_BITS)}"
        ) from None


def kv_bytes_per_element(fmt: str) -> float:
    """Bytes per KV-cache element of a KV format."""
    try:
        return KV_BITS[fmt] / BITS_PER_BYTE
    except KeyError:
        raise KnobError(f"unknown kv_format '{fmt}'; use one of {', '.join(KV_BITS)}") from None


def msb_bytes_per_param(draft_bits: np.ndarray | float) -> np.ndarray:
    """Bytes per parameter of the top ``draft_bits`` bits of an INT8 G32 weight plus its scale."""
    return (np.asarray(draft_bits, dtype=float) + FP16_SCALE_BITS / GROUP_SIZE) / BITS_PER_BYTE


def lsb_bytes_per_param(draft_bits: np.ndarray | float) -> np.ndarray:
    """Bytes per parameter of the low 8 - ``draft_bits`` bits of an INT8 weight (no scale)."""
    return (8.0 - np.asarray(draft_bits, dtype=float)) / BITS_PER_BYTE
