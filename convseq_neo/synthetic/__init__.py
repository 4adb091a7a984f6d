"""Synthetic recordings with planted sequences and exact ground truth
(:mod:`~convseq_neo.synthetic.generate`), recordings with nothing planted for measuring false
detections (:mod:`~convseq_neo.synthetic.null_suite`), and scores of detections against ground
truth (:mod:`~convseq_neo.synthetic.evaluate`)."""
