"""
Detect spike sequences in Neo data
==================================

A recording of 60 neurons in which two sequences of 12 neurons each repeat 25 times (with
dropped spikes and timing jitter) on top of a 2 Hz Poisson background. We put the trains in a
:class:`neo.Block`, detect the sequences with :func:`convseq_neo.detect`, store the result in the
Block (an :class:`neo.Epoch` of occurrences and one :class:`neo.Group` of member trains per pattern)
and score it against the planted truth.

The fits are kept small (``max_epochs``, ``n_surrogates``, ``n_folds``) so the script runs in
seconds; leave those options out on real data.
"""

# %%
# A recording with two planted sequences
# --------------------------------------
# ``sequence_recording`` returns ordinary :class:`neo.SpikeTrain` objects (one per neuron) and the
# exact ground truth. Member ``i`` of a sequence fires ``i * 10 ms`` after its onset, with
# probability 0.9 and 3 ms jitter.
import neo
import quantities as pq
import torch

import convseq_neo
from convseq_neo.synthetic.evaluate import score_detections
from convseq_neo.synthetic.generate import sequence_recording

torch.set_num_threads(1)  # small fits run fastest on one thread

recording = sequence_recording(n_neurons=60, n_patterns=2, members_per_pattern=12, duration=60 * pq.s,
                               rate=2 * pq.Hz, lag_step=10 * pq.ms, n_occurrences=25, participation=0.9,
                               jitter=3 * pq.ms, random_state=1)
block = neo.Block(name="synthetic session")
segment = neo.Segment(name="trial 1")
block.segments.append(segment)
segment.spiketrains.extend(recording.spiketrains)
print(f"{len(segment.spiketrains)} spike trains, {sum(len(t) for t in segment.spiketrains)} spikes, "
      f"{float(segment.spiketrains[0].t_stop):g} s")

# %%
# Detect
# ------
# ``bin_size`` is the time resolution, ``width`` the longest sequence to look for (here the
# sequences last 110 ms), ``n_patterns`` how many distinct sequences to learn. Every occurrence that
# is reported passed a cross-fitted surrogate test at a false discovery rate of 5 %.
result = convseq_neo.detect(segment, bin_size=5 * pq.ms, width=200 * pq.ms, n_patterns=2, random_state=0,
                            max_epochs=600, n_surrogates=50, n_folds=3)
print(result)
print(result.occurrences.head())

# %%
# Store the result in the Neo objects
# -----------------------------------
# ``annotate`` appends an Epoch (one entry per occurrence, from the earliest to the latest member)
# to the segment and one Group per pattern (its member trains, ordered by lag) to the block. With
# ``label_spikes=True`` every spike also gets the pattern and occurrence it took part in (-1 if none)
# as array annotations. A NixIO file written from this block keeps all of it.
epoch, groups = result.annotate(block, label_spikes=True)
print(f"Epoch {epoch.name!r}: {len(epoch)} occurrences, labels {sorted(set(epoch.labels.tolist()))}")
for group in block.groups:
    lags_ms = group.annotations["lags"].rescale(pq.ms).magnitude
    print(f"Group {group.name!r}: {len(group.spiketrains)} member trains, lags {lags_ms.min():.0f} to "
          f"{lags_ms.max():.0f} ms, {group.annotations['n_occurrences']} occurrences")
labelled = sum(int((train.array_annotations["convseq_pattern"] >= 0).sum()) for train in segment.spiketrains)
print(f"{labelled} spikes labelled as taking part in an occurrence")

# %%
# Compare with the planted truth
# ------------------------------
# Each planted sequence is paired with the learned pattern that finds most of its occurrences;
# a detection counts as a hit when its centre lies within 50 ms of a planted occurrence centre.
truth = recording.ground_truth
scores = score_detections(result.occurrences["center"].to_numpy(), result.occurrences["pattern"].to_numpy(),
                          truth.array_annotations["center"], truth.array_annotations["pattern_id"],
                          tolerance=0.05)
for _, row in scores.per_pattern.iterrows():
    print(f"planted {row['true_pattern']} <- learned {row['learned_pattern']}: {row['n_hits']}/{row['n_true']} "
          f"found, {row['n_false']} false")
learned_for = {true: learned for learned, true in scores.assignment.items()}
for k, members in enumerate(recording.members):
    found = set(result.patterns[learned_for[k]].neurons.tolist()) if k in learned_for else set()
    print(f"planted {k}: {len(found & set(members.tolist()))}/{len(members)} members recovered "
          f"({len(found)} reported)")
print(f"Overall F1 {scores.f1:.2f} (precision {scores.precision:.2f}, recall {scores.recall:.2f})")
