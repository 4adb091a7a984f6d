"""
Annotate an NWB file with detected sequences
============================================

We write a small synthetic session (40 units, one planted sequence of 12 units) to an NWB file,
then let :func:`convseq_neo.io.nwb.annotate` detect sequences in its Units table and append them to
the file: the occurrences as an ``EventsTable`` under ``/events/convseq`` and the patterns (member
units, lags, filters) as a table in a processing module. The original data is never modified: the
annotated file is written as a temporary copy and swapped in atomically. Finally
:func:`convseq_neo.io.nwb.read_detections` reads everything back as pandas tables.

The command line does the same: ``convseq-neo annotate session.nwb --bin-size 5ms --width 200ms
--patterns 1``.
"""

# %%
# Write a session to NWB
# ----------------------
# A normal pynwb file: session metadata, a subject and a Units table with one row per unit.
import datetime
import tempfile
from pathlib import Path

import numpy as np
import quantities as pq
import torch
from pynwb import NWBHDF5IO, NWBFile
from pynwb.file import Subject

from convseq_neo.io import nwb
from convseq_neo.synthetic.evaluate import match_events
from convseq_neo.synthetic.generate import sequence_recording

torch.set_num_threads(1)  # small fits run fastest on one thread

recording = sequence_recording(n_neurons=40, members_per_pattern=12, duration=40 * pq.s, rate=2 * pq.Hz,
                               lag_step=10 * pq.ms, n_occurrences=25, participation=0.9, jitter=3 * pq.ms,
                               random_state=3)
nwbfile = NWBFile(
    session_description="synthetic session with one planted spike sequence",
    identifier="convseq-example-annotate-nwb",
    session_start_time=datetime.datetime(2024, 1, 1, 12, tzinfo=datetime.timezone.utc),
    experimenter=["Doe, Jane"], institution="Example Institute", lab="Sequence Lab",
    experiment_description="convseq_neo example", keywords=["sequences", "replay"],
    subject=Subject(subject_id="sim1", species="Mus musculus", sex="U", age="P90D", description="simulated"))
nwbfile.add_unit_column(name="unit_name", description="label of the unit")
for i, train in enumerate(recording.spiketrains):
    nwbfile.add_unit(spike_times=train.times.rescale(pq.s).magnitude, obs_intervals=[[0.0, 40.0]],
                     unit_name=f"unit{i}")

scratch = tempfile.TemporaryDirectory(prefix="convseq_example_")  # removed at the end
workdir = Path(scratch.name)
path = workdir / "session.nwb"
with NWBHDF5IO(str(path), "w") as io:
    io.write(nwbfile)
print(f"wrote {path.name}: {len(recording.spiketrains)} units")

# %%
# Annotate it
# -----------
# ``annotate`` reads the Units table, runs :func:`convseq_neo.detect` and stores the result. Here it
# writes an annotated copy (``out=``); without ``out`` the file itself is updated. Each run needs
# its own ``name`` (NWB cannot delete objects).
annotated = workdir / "session_annotated.nwb"
result = nwb.annotate(path, bin_size=5 * pq.ms, width=200 * pq.ms, n_patterns=1, out=annotated, random_state=0,
                      max_epochs=300, n_surrogates=50, n_folds=3)
print(f"stored {len(result.occurrences)} occurrences in {result.parameters['nwb_events_table']} and the "
      f"patterns in {result.parameters['nwb_patterns_table']}")

# %%
# Read the detections back
# ------------------------
# Everything stored comes back as pandas tables (times in seconds, units by their Units-table id),
# together with the learned filters and the parameters of the run.
stored = nwb.read_detections(annotated)
print(stored.occurrences.head())
members = stored.patterns.loc[0, "units"]
print(f"pattern 0: {len(members)} member units (ordered by lag): {members}")
print(f"filters: {stored.filters.shape} (patterns x units x window bins); "
      f"stored by {stored.parameters['software']}")

# %%
# The spike times are untouched
# -----------------------------
with NWBHDF5IO(str(path), "r") as io_in, NWBHDF5IO(str(annotated), "r") as io_out:
    before, after = io_in.read().units, io_out.read().units
    same = (np.array_equal(before["spike_times"].data[:], after["spike_times"].data[:])
            and np.array_equal(before["spike_times_index"].data[:], after["spike_times_index"].data[:]))
print(f"Units table unchanged: {same}")

# %%
# Compare with the planted truth
# ------------------------------
# A detection is a hit when its centre lies within 50 ms of a planted occurrence centre.
truth = recording.ground_truth.array_annotations["center"]
match = match_events(stored.occurrences["center"].to_numpy(), truth, tolerance=0.05)
planted = set(recording.members[0].tolist())
print(f"{len(planted & set(members))}/{len(planted)} planted members recovered")
print(f"F1 {match.f1:.2f} ({match.n_hits} hits of {len(truth)} planted occurrences)")

scratch.cleanup()
