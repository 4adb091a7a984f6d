"""convseq_neo: convSeq spatiotemporal spike-sequence detection for Neo, Elephant and NWB.

Implements convSeq (R. Koshkin & T. Fukai, "convSeq: Fast and Scalable Method for Detecting
Patterns in Spike Data", ICML 2024) with an event-driven torch core.

The package is grouped by role: :mod:`convseq_neo.io` (Neo, NWB, datasets) -> :class:`SpikeRaster`
-> :mod:`convseq_neo.core` (torch, knows no Neo) -> :func:`detect` and its :class:`DetectionResult`
-> :mod:`convseq_neo.plot`; :mod:`convseq_neo.synthetic` makes recordings with ground truth and
scores detections, :mod:`convseq_neo.analysis` relates them to behaviour. Names below are imported
on first use, so ``import convseq_neo.core`` loads neither Neo, pynwb nor matplotlib.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from convseq_neo import _moved
from convseq_neo._version import __version__

# Bound eagerly: a lazy name would lose to the submodule of the same name once anything imports
# ``convseq_neo.detect``. The module imports its heavy dependencies inside the function.
from convseq_neo.detect import detect

if TYPE_CHECKING:  # pragma: no cover
    from convseq_neo.core.estimator import ConvSeq
    from convseq_neo.raster import SpikeRaster
    from convseq_neo.result import DetectionResult, Pattern

_moved.install()

#: Public name -> module that defines it (imported on first access).
_LAZY = {
    "ConvSeq": "convseq_neo.core.estimator",
    "SpikeRaster": "convseq_neo.raster",
    "DetectionResult": "convseq_neo.result",
    "Pattern": "convseq_neo.result",
}

__all__ = ["ConvSeq", "DetectionResult", "Pattern", "SpikeRaster", "detect", "__version__"]


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    old = f"{__name__}.{name}"
    if old in _moved.MOVED:
        return _moved.resolve(old)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
