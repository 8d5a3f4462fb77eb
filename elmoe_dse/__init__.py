"""elmoe-dse: analytical design-space exploration of MoE decoding on memory-centric hardware."""

from __future__ import annotations

__version__ = "0.1.0"
