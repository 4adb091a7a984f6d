"""The one version source: the installed distribution's version.

setuptools-scm writes it from git at install time, so a development build carries the commit
(e.g. ``0.2.0.dev3+g1a2b3c4``, ``.d20261130`` when the tree had uncommitted changes); NWB and Neo
provenance record exactly this string.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__: str = version("convseq_neo")
except PackageNotFoundError:  # pragma: no cover - a source tree that was never installed
    __version__ = "0.0.0+unknown"
