"""Spies for tests that check what a function passes on."""


def record_padding(monkeypatch, module) -> dict:
    """Record the ``pad`` that ``module`` passes to its ``collect_peaks`` and ``null_peak_heights_in_chunks``.

    Returns the dict that fills as they are called: ``{"candidates": pad, "null": pad}``.
    """
    seen = {}
    real_collect, real_null = module.collect_peaks, module.null_peak_heights_in_chunks

    def collect(*args, **kwargs):
        seen["candidates"] = args[3] if len(args) > 3 else kwargs["pad"]
        return real_collect(*args, **kwargs)

    def null(*args, **kwargs):
        seen["null"] = kwargs["pad"]
        return real_null(*args, **kwargs)

    monkeypatch.setattr(module, "collect_peaks", collect)
    monkeypatch.setattr(module, "null_peak_heights_in_chunks", null)
    return seen
