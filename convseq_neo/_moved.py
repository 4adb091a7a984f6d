"""Import paths of modules that moved when the package was grouped by role (0.2.0).

``import convseq_neo.nwb`` (and the other old paths below) still works: a finder on ``sys.meta_path``
answers for the old name with the module at its new home, so both names are the same module
object, and a ``FutureWarning`` says where it lives now. The old paths will be removed in 1.0.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import os
import sys
import warnings

_IMPORTLIB_DIR = os.path.dirname(importlib.__file__)

#: Old module path -> new module path.
MOVED = {
    "convseq_neo.adapters": "convseq_neo.io.neo",
    "convseq_neo.nwb": "convseq_neo.io.nwb",
    "convseq_neo.datasets": "convseq_neo.io.datasets",
    "convseq_neo.generate": "convseq_neo.synthetic.generate",
    "convseq_neo.evaluate": "convseq_neo.synthetic.evaluate",
    "convseq_neo.placefields": "convseq_neo.analysis.placefields",
    "convseq_neo.replication": "convseq_neo.analysis.replication",
}


def _caller_level() -> int:
    """``stacklevel`` of the first frame outside this package's plumbing (the user's line).

    ``warnings.warn`` itself skips importlib's frames when it counts, so they are not counted here.
    """
    plumbing = (__file__, os.path.join(os.path.dirname(__file__), "__init__.py"))
    frame, level = sys._getframe(1), 1
    while frame is not None:
        name = frame.f_code.co_filename
        if "importlib" in name and "_bootstrap" in name:
            frame = frame.f_back
        elif name in plumbing or os.path.dirname(name) == _IMPORTLIB_DIR:
            frame, level = frame.f_back, level + 1
        else:
            break
    return level


def warn_moved(old: str) -> None:
    """Warn that ``old`` moved, pointing at the line that imported or accessed it."""
    warnings.warn(f"{old} moved to {MOVED[old]}; import it from there ({old} will be removed in 1.0)",
                  FutureWarning, stacklevel=_caller_level())


def resolve(old: str):
    """The module that now stands for ``old``, with the warning."""
    warn_moved(old)
    return importlib.import_module(MOVED[old])


class _Loader(importlib.abc.Loader):
    def create_module(self, spec):
        return resolve(spec.name)

    def exec_module(self, module) -> None:
        """The module is already executed at its new home."""


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path=None, target=None):
        if fullname not in MOVED:
            return None
        return importlib.util.spec_from_loader(fullname, _Loader())


def install() -> None:
    """Put the finder on ``sys.meta_path`` once."""
    if not any(isinstance(finder, _Finder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _Finder())
