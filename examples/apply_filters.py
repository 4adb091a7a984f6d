"""
Find learned sequences in another recording
===========================================

Once convSeq has learned a pattern, it can be looked for in other recordings of the same neurons
(another session, a sleep epoch after a run) without training again:
:meth:`DetectionResult.find <convseq_neo.result.DetectionResult.find>` slides the pattern (its
members at their lags) over the new recording and tests every peak of that fixed filter's response
against dithered surrogates of the *new* recording.

Here we learn one sequence on a first synthetic recording, then look for it in (1) a second
recording where the same sequence occurs at other times, over a new background, and (2) a control
recording with no sequence at all, where nothing should be found.
"""

# %%
# Learn the pattern on a first recording
# --------------------------------------
import numpy as np
import quantities as pq
import torch

import convseq_neo
from convseq_neo.synthetic.evaluate import match_events
from convseq_neo.synthetic.generate import plant_sequences, poisson_background, sequence_recording

torch.set_num_threads(1)  # small fits run fastest on one thread

first = sequence_recording(n_neurons=40, members_per_pattern=12, duration=40 * pq.s, rate=2 * pq.Hz,
                           lag_step=10 * pq.ms, n_occurrences=25, participation=0.9, jitter=3 * pq.ms,
                           random_state=7)
result = convseq_neo.detect(first.spiketrains, n_patterns=1, bin_size=5 * pq.ms, width=200 * pq.ms, random_state=0,
                            max_epochs=300, n_surrogates=50, n_folds=3)
print(f"learned on the first recording: {result.patterns[0].size} members, "
      f"{len(result.occurrences)} occurrences")

# %%
# A second recording with the same sequence
# -----------------------------------------
# New Poisson background (another seed, 60 s), the same members firing in the same order with the
# same lags, at 30 new random times.
background = poisson_background(40, 2 * pq.Hz, 0 * pq.s, 60 * pq.s, random_state=11)
second, truth = plant_sequences(background, first.members, lags=first.truth.onset_lags, n_occurrences=30,
                                participation=0.9, jitter=3 * pq.ms, random_state=12)
found = result.find(second, random_state=0)
print(f"second recording: {len(found.occurrences)} occurrences found "
      f"({len(truth.centers)} planted)")

# %%
# Score the hits: a detection is a hit when its centre lies within 50 ms of a planted centre.
match = match_events(found.occurrences["center"].to_numpy(), truth.centers.rescale(pq.s).magnitude,
                     tolerance=0.05)
print(f"hits {match.n_hits}, misses {match.n_misses}, false {match.n_false}; "
      f"median timing error {match.median_abs_error * 1e3:.1f} ms")
print(f"F1 on the second recording {match.f1:.2f}")

# %%
# A control recording without the sequence
# ----------------------------------------
control = poisson_background(40, 2 * pq.Hz, 0 * pq.s, 60 * pq.s, random_state=13)
nothing = result.find(control, random_state=0)
print(f"control recording (no sequence): {len(nothing.occurrences)} occurrences found")

# %%
# The peak heights tell the same story: the pattern's filter responds much more strongly where the
# sequence is.
print(f"median peak height: second recording {np.median(found.occurrences['peak']):.2f}, "
      f"strongest peak in the control {np.max(nothing.candidates['peak']):.2f}")
