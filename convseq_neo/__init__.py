"""convseq_neo: convSeq spatiotemporal spike-sequence detection for Neo, Elephant and NWB.

Implements convSeq (R. Koshkin & T. Fukai, "convSeq: Fast and Scalable Method for Detecting
Patterns in Spike Data", ICML 2024) with an event-driven torch core.
"""

from importlib.metadata import PackageNotFoundError, version

from convseq_neo import evaluate, generate
from convseq_neo.core.estimator import ConvSeq
from convseq_neo.detect import DetectionResult, Pattern, detect
from convseq_neo.raster import SpikeRaster

try:
    __version__ = version("convseq_neo")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0+unknown"

__all__ = ["ConvSeq", "DetectionResult", "Pattern", "SpikeRaster", "detect", "evaluate", "generate", "__version__"]
