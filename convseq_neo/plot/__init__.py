"""Figures of detection results (matplotlib without pyplot: never shown, safe on any backend).

Data objects never import this package; :meth:`DetectionResult.plot` imports it when called.
"""

from convseq_neo.plot.figures import (
    OKABE_ITO,
    PATTERN_COLORS,
    plot_detection,
    plot_filters,
    plot_membership,
    plot_raster,
    plot_responses,
    plot_scale_search,
    plot_training_curve,
    sorted_rows,
)

__all__ = [
    "OKABE_ITO",
    "PATTERN_COLORS",
    "plot_detection",
    "plot_raster",
    "plot_responses",
    "plot_filters",
    "plot_training_curve",
    "plot_membership",
    "plot_scale_search",
    "sorted_rows",
]
