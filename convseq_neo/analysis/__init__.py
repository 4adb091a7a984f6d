"""Analyses built on detections: place fields against learned orders
(:mod:`~convseq_neo.analysis.placefields`) and held-out replication
(:mod:`~convseq_neo.analysis.replication`)."""
