"""Synthetic recordings with planted sequences and exact ground truth
(:mod:`~convseq_neo.synthetic.generate`), a Neuropixels-sized session with one planted sequence
(:mod:`~convseq_neo.synthetic.session`), recordings with nothing planted for measuring false
detections (:mod:`~convseq_neo.synthetic.null_suite`), and scores of detections against ground
truth (:mod:`~convseq_neo.synthetic.evaluate`)."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from convseq_neo.synthetic.session import SessionRecording, session_recording

#: Public name -> module that defines it (imported on first access, so that importing one submodule
#: does not load the others).
_LAZY = {
    "SessionRecording": "convseq_neo.synthetic.session",
    "session_recording": "convseq_neo.synthetic.session",
}

__all__ = ["SessionRecording", "session_recording"]


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
