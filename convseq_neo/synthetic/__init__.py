"""Synthetic recordings with planted sequences and exact ground truth
(:mod:`~convseq_neo.synthetic.generate`), and scores of detections against it
(:mod:`~convseq_neo.synthetic.evaluate`)."""
