"""Analyses built on detections: place fields against learned orders
(:mod:`~convseq_neo.analysis.placefields`), held-out replication
(:mod:`~convseq_neo.analysis.replication`) and the rank order of members within each occurrence
(:mod:`~convseq_neo.analysis.rank_order`)."""
