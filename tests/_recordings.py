"""Small recordings and files shared by several test modules (imported as ``from _recordings import ...``)."""

import quantities as pq


def planted_nwb(path, random_state: int):
    """Write an NWB file of 40 units (ids 100-139) over 40 s with one planted 12-member sequence at ``path``."""
    from test_nwb import make_nwbfile, write

    from convseq_neo.synthetic.generate import sequence_recording

    rec = sequence_recording(n_neurons=40, members_per_pattern=12, duration=40 * pq.s, rate=2 * pq.Hz,
                             lag_step=10 * pq.ms, participation=1.0, jitter=5 * pq.ms, n_occurrences=25,
                             random_state=random_state)
    trains = [t.times.rescale(pq.s).magnitude for t in rec.spiketrains]
    return write(make_nwbfile(trains), path)


def docstring_recording():
    """30 neurons, 40 s, one planted pattern of 12 members, 20 occurrences (the docstrings' recording)."""
    from convseq_neo.synthetic.generate import sequence_recording

    return sequence_recording(n_neurons=30, members_per_pattern=12, duration=40 * pq.s, rate=2 * pq.Hz,
                              lag_step=10 * pq.ms, n_occurrences=20, jitter=2 * pq.ms, random_state=1)
