"""Issue 21's short recordings: a sequence with 8 or 12 occurrences is found and its members named (seeds 0-4)."""

import numpy as np
import pytest

from convseq_neo import ConvSeq
from convseq_neo.synthetic.evaluate import match_events
from convseq_neo.synthetic.even_raster import evenly_planted_raster

N_NEURONS, N_MEMBERS, N_OCCURRENCES, WIDTH = 75, 20, 12, 20
SEEDS = range(5)


def _outcomes(n_occurrences, **options):
    """F1 and members named (true, false) per seed on the short recording with ``n_occurrences``.

    75 neurons at 5 % per bin; a 20-member sequence spanning 10 bins, each member in 80 % of the
    occurrences; the layout of ``benchmarks/bench_sensitivity.py``'s ``short`` section (one occurrence
    per 55 bins: 444 bins for 8, 666 for 12).
    """
    rows = []
    for seed in SEEDS:
        planted = evenly_planted_raster(n_occurrences, n_neurons=N_NEURONS, n_members=N_MEMBERS,
                                        random_state=np.random.default_rng([seed, n_occurrences]))
        model = ConvSeq(width=WIDTH, random_state=seed, n_jobs=1, **options).fit(planted.raster)
        occurrences = model.occurrences_[model.occurrences_["significant"]]
        named = model.membership_.loc[model.membership_["member"], "neuron"].to_numpy()
        rows.append({"f1": match_events(occurrences["center"].to_numpy(float), planted.centres, 7.0).f1,
                     "named": int(np.isin(named, planted.members).sum()),
                     "false": int((~np.isin(named, planted.members)).sum())})
    return rows


@pytest.fixture(scope="module")
def twelve():
    return _outcomes(N_OCCURRENCES)


# Issue 21's 444-bin case: 8 occurrences. The default objective finds it with F1 >= 0.8 in 2 of
# these 5 seeds (measured: 0.67, 1.00, 0.40, 0.77, 0.86); the normalised objective in all 5.
@pytest.fixture(scope="module")
def eight_normalized():
    return _outcomes(8, objective="normalized")


CASES = pytest.mark.parametrize("case, max_false", [("twelve", 3), ("eight_normalized", 1)],
                                ids=["12 occurrences", "8 occurrences, normalised objective"])


@CASES
def test_the_sequence_is_found_with_f1_08_for_4_of_5_seeds(case, max_false, request):
    f1 = [row["f1"] for row in request.getfixturevalue(case)]
    assert sum(value >= 0.8 for value in f1) >= 4, f1


@CASES
def test_15_members_are_named_with_few_false_for_4_of_5_seeds(case, max_false, request):
    named = [(row["named"], row["false"]) for row in request.getfixturevalue(case)]
    assert sum(true >= 15 and false <= max_false for true, false in named) >= 4, named
