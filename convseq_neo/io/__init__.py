"""Data in and out: Neo/Elephant inputs (:mod:`~convseq_neo.io.neo`), NWB files
(:mod:`~convseq_neo.io.nwb`; many files on a dask cluster: :mod:`~convseq_neo.io.nwb_batch`) and
the real recordings the project tests on (:mod:`~convseq_neo.io.datasets`).

Submodules are imported on demand, so ``import convseq_neo.io`` loads neither Neo nor pynwb.
"""
