"""The real CA1 recording (Rubin et al. 2019): learned orders follow place fields and replicate.

No ground truth exists for a real recording, so the checks are the two the analysis in
``notebooks/02_ca1_place_cells.ipynb`` reports: a learned pattern's member order against the
place fields of the running direction read from the animal's velocity at its occurrences (the
sign that direction predicts, at permutation p < 0.01), and held-out replication against
circularly shifted data. Parameters are the notebook's (W = 60 frames, about one run, as in the
Method page of the documentation, docs/method.md, section 'The CA1 recording: facts an analysis
must respect'), fixed before looking at these results.
"""

import numpy as np
import pytest
import quantities as pq

from convseq_neo import detect
from convseq_neo.analysis.placefields import place_field_order, track_movement
from convseq_neo.analysis.replication import held_out_replication

pytestmark = pytest.mark.slow

BIN = 50 * pq.ms
WIDTH = 60 * BIN
N_PATTERNS = 2


def test_learned_order_follows_place_fields_of_its_direction(ca1_segment):
    result = detect(ca1_segment, bin_size=BIN, width=WIDTH, n_patterns=N_PATTERNS, random_state=0)
    movement = track_movement(ca1_segment.analogsignals[0])
    table = place_field_order(result, ca1_segment, movement, random_state=0)
    print(table.to_string())
    decided = table[table.direction != 0]
    predicted = decided[(np.sign(decided.rho) == decided.direction) & (decided.pvalue < 0.01)]
    assert len(predicted) >= 1, table.to_string()


def test_patterns_learned_on_one_half_recur_on_the_other(ca1_segment):
    check = held_out_replication(ca1_segment, bin_size=BIN, width=WIDTH, n_patterns=N_PATTERNS, random_state=0)
    counts = check.counts
    print(counts.to_string())
    replicated = counts[(counts.held_out >= 10) & (counts.held_out >= 3 * counts.shifted)]
    assert len(replicated) >= 1, counts.to_string()
