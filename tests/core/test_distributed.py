"""Data-parallel training over time chunks (torch.distributed): chunks, halos, and two processes against one.

The two-process test spawns 2 CPU ranks (gloo, one thread each, a file store in ``tmp_path``). Each
rank bins only its chunk from the spike times, trains the same batch of filters for 1 and for 20
epochs with :func:`train_filters_distributed`, and writes its results to ``tmp_path``; this process
compares them with :class:`ResponseObjective` + :func:`train_filters` on the whole raster.

Both runs are made in float32 (the package's dtype) and in float64. Tolerances in float32: the
loss to ``rtol=1e-4, atol=1e-6`` and the gradient to ``rtol=1e-4`` with ``atol`` 1e-5 of its
largest entry. The two paths add the same terms in a different order (per chunk, then over ranks),
so they agree to rounding, not bit for bit; the ranks agree with each other bit for bit. The trained
logits are compared to ``atol=1e-3`` (a hundredth of one Adam step, ``lr = 0.1``): Adam divides each
gradient entry by its running RMS plus ``1e-8``, so an entry whose gradient is near 1e-8 (1e-7 of the
largest, float32 rounding of the sum) takes a step that the rounding changes by up to a few 1e-4
(measured: 3.2e-4 after 1 epoch on 1 of 8,000 entries, where the initial gradient is 8.2e-9 in one
process and 8.3e-9 in two; 2.3e-4 after 20 epochs). In float64 the rounding is 1e-16 and the same
quantities agree to 1e-12 (measured: at most 6e-15 of the largest gradient entry, 5e-15 on the
logits), which shows that the all-reduced loss and gradient are the same function, not a close one.
"""

import datetime
import os
import time

import numpy as np
import pytest
import quantities as pq
import torch

from convseq_neo._validation import check_random_state, torch_generator
from convseq_neo.core.distributed import (
    ChunkedResponseObjective,
    TimeChunk,
    chunk_bounds,
    chunk_from_spike_times,
    train_filters_distributed,
)
from convseq_neo.core.objective import default_tv_weight
from convseq_neo.core.response import make_response, response_length
from convseq_neo.core.training import ResponseObjective, TrainingSettings, train_filters
from convseq_neo.raster import SpikeRaster

WIDTH, BIN_S, DURATION_S, N_NEURONS, SEED, N_FILTERS = 50, 0.005, 15.0, 40, 3, 4
N_BINS = 3000  # DURATION_S / BIN_S
DTYPES = (torch.float32, torch.float64)
DTYPE_TAGS = {torch.float32: "f32", torch.float64: "f64"}
#: (rtol, atol) of the loss, (rtol, atol as a fraction of the largest entry) of the gradient, atol of the logits
TOLERANCES = {"f32": {"loss": (1e-4, 1e-6), "grad": (1e-4, 1e-5), "logits": 1e-3},
              "f64": {"loss": (1e-12, 1e-15), "grad": (1e-12, 1e-12), "logits": 1e-12}}
WORLD = 2
TIMEOUT_S = 180


def _settings(max_epochs: int) -> TrainingSettings:
    # tol=0 never stops early, so both runs train exactly max_epochs; re-centring every 5 epochs
    return TrainingSettings(tv_weight=default_tv_weight(WIDTH), explained_weight=1.0, lr=0.1, max_epochs=max_epochs,
                            min_epochs=max_epochs, tol=0.0, patience=5, recenter_every=5)


def _spikes():
    """40 neurons x 15 s (3,000 bins of 5 ms), one 12-member sequence planted 10 times: flat times and rows."""
    from convseq_neo.synthetic.generate import sequence_recording

    rec = sequence_recording(n_neurons=N_NEURONS, members_per_pattern=12, duration=DURATION_S * pq.s, rate=3 * pq.Hz,
                             lag_step=10 * pq.ms, n_occurrences=10, participation=1.0, jitter=2 * pq.ms,
                             random_state=0)
    times = [train.times.rescale(pq.s).magnitude for train in rec.spiketrains]
    rows = np.concatenate([np.full(t.size, n) for n, t in enumerate(times)])
    return np.concatenate(times), rows


def _masks():
    """Two models of two restarts: all times, and a fold that leaves out times across the chunk border.

    Both have explained times (one stretch across the border), so the penalty term and the border's
    smoothness pairs are exercised.
    """
    length = response_length(N_BINS, WIDTH)
    train = np.ones((N_FILTERS, length), dtype=bool)
    train[2:, 1350:1650] = False
    explained = np.zeros_like(train)
    explained[:, 1480:1530] = True
    explained[:, 400:450] = True
    return train, explained


def _loss_and_gradient(objective, logits: torch.Tensor):
    theta = logits.detach().clone().requires_grad_(True)
    losses = objective.losses(torch.softmax(theta, dim=-1))
    (grad,) = torch.autograd.grad(losses.sum(), theta)
    return losses.detach().numpy(), grad.numpy()


def _initial_logits(dtype=torch.float32):
    """The logits train_filters starts from with this seed."""
    generator = torch_generator(check_random_state(SEED))
    return torch.randn((N_FILTERS, N_NEURONS, WIDTH), generator=generator, dtype=dtype)


def _train_and_measure(make_objective, train, out: dict, shifts: list) -> None:
    """For float32 and float64: the loss and gradient at the initial logits, then after 1 and 20 epochs.

    ``make_objective(dtype)`` builds the objective the gradients are taken on; ``train(epochs, dtype)``
    trains from the seed; ``shifts`` is filled with the re-centring shifts while training.
    """
    for dtype in DTYPES:
        tag = DTYPE_TAGS[dtype]
        objective = make_objective(dtype)
        out[f"{tag}_loss_0"], out[f"{tag}_grad_0"] = _loss_and_gradient(objective, _initial_logits(dtype))
        for epochs in (1, 20):
            shifts.clear()
            outcome = train(epochs, dtype)
            out[f"{tag}_history_{epochs}"] = outcome.loss_history
            out[f"{tag}_final_{epochs}"] = outcome.final_loss
            out[f"{tag}_logits_{epochs}"] = outcome.logits.numpy()
            out[f"{tag}_shifts_{epochs}"] = np.array(shifts).reshape(-1, N_FILTERS)
            out[f"{tag}_loss_{epochs}"], out[f"{tag}_grad_{epochs}"] = _loss_and_gradient(objective, outcome.logits)


# ---------------------------------------------------------------------------------------------
# one rank (a spawned process)
# ---------------------------------------------------------------------------------------------
def _rank_main(rank: int, folder: str) -> None:
    """One rank: bin its chunk, train 1 and 20 epochs, write what it saw and got to ``folder``."""
    torch.set_num_threads(1)
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{folder}/store", rank=rank, world_size=WORLD,
                            timeout=datetime.timedelta(seconds=TIMEOUT_S - 30))
    try:
        data = np.load(os.path.join(folder, "input.npz"))
        chunk = chunk_bounds(N_BINS, WIDTH, WORLD, rank)
        local = chunk_from_spike_times(data["times"], data["rows"], N_NEURONS, BIN_S, 0.0, DURATION_S, chunk)
        train, explained = chunk.slice_mask(data["train"]), chunk.slice_mask(data["explained"])
        out = {"bounds": np.array([chunk.start, chunk.stop, chunk.bin_start, chunk.bin_stop]),
               "n_bins": np.array(local.n_bins), "spike_bins": local.bin_index + chunk.bin_start,
               "spike_neurons": local.neuron_index, "spike_counts": local.counts}

        shifts = []
        original = ChunkedResponseObjective.recenter_shifts

        def recording(self, filters):
            result = original(self, filters)
            shifts.append(result)
            return result

        ChunkedResponseObjective.recenter_shifts = recording
        _train_and_measure(
            lambda dtype: ChunkedResponseObjective(make_response(local, WIDTH, dtype=dtype), local, chunk, train,
                                                   explained, _settings(20)),
            lambda epochs, dtype: train_filters_distributed(local, chunk, train, explained, _settings(epochs),
                                                            random_state=SEED, dtype=dtype),
            out, shifts)
        try:
            train_filters_distributed(local, chunk, train, explained, _settings(1), random_state=rank)
            out["seed_error"] = np.array("")
        except ValueError as err:
            out["seed_error"] = np.array(str(err))
        np.savez(os.path.join(folder, f"rank{rank}.npz"), **out)
    finally:
        dist.destroy_process_group()


def _run_ranks(folder) -> float:
    """Spawn the ranks, wait for them (killing them after TIMEOUT_S), and return the wall time."""
    import torch.multiprocessing as mp

    began = time.perf_counter()
    context = mp.start_processes(_rank_main, args=(str(folder),), nprocs=WORLD, join=False, start_method="spawn")
    try:
        while not context.join(timeout=1):
            if time.perf_counter() - began > TIMEOUT_S:
                pytest.fail(f"the {WORLD} ranks did not finish within {TIMEOUT_S} s")
    finally:
        for process in context.processes:
            if process.is_alive():
                process.kill()
    return time.perf_counter() - began


# ---------------------------------------------------------------------------------------------
# two processes against one
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ddp")
    times, rows = _spikes()
    train, explained = _masks()
    np.savez(folder / "input.npz", times=times, rows=rows, train=train, explained=explained)
    wall = _run_ranks(folder)
    ranks = [dict(np.load(folder / f"rank{rank}.npz")) for rank in range(WORLD)]
    raster = SpikeRaster.from_row_times(times, rows, N_NEURONS, BIN_S, 0.0, DURATION_S)
    return {"ranks": ranks, "raster": raster, "train": train, "explained": explained, "wall_s": wall}


@pytest.fixture(scope="module")
def one_process(two_ranks):
    """ResponseObjective + train_filters on the whole raster, same seed and settings, re-centring shifts recorded."""
    raster, train, explained = two_ranks["raster"], two_ranks["train"], two_ranks["explained"]
    shifts = []

    def objective(dtype):
        whole = ResponseObjective(make_response(raster, WIDTH, dtype=dtype), raster, torch.as_tensor(train),
                                  torch.as_tensor(explained), _settings(20))
        recenter = whole.recenter_shifts

        def recording(filters):
            result = recenter(filters)
            shifts.append(result)
            return result

        whole.recenter_shifts = recording
        return whole

    def trained(epochs, dtype):
        return train_filters(objective(dtype), N_FILTERS, _settings(epochs), torch_generator(check_random_state(SEED)))

    out = {}
    _train_and_measure(objective, trained, out, shifts)
    return out


def test_each_rank_holds_only_its_chunk(two_ranks):
    raster = two_ranks["raster"]
    half_bins = N_BINS // 2
    owned = []
    for result in two_ranks["ranks"]:
        start, stop, bin_start, bin_stop = result["bounds"].tolist()
        n_bins = int(result["n_bins"])
        assert n_bins == bin_stop - bin_start
        assert half_bins < n_bins <= half_bins + WIDTH + 1  # about T/2 plus a W-bin halo
        bins = result["spike_bins"]
        assert bins.min() >= bin_start and bins.max() < bin_stop
        # exactly the whole raster's entries in its bins, nothing else
        inside = (raster.bin_index >= bin_start) & (raster.bin_index < bin_stop)
        key = raster.neuron_index[inside] * N_BINS + raster.bin_index[inside]
        np.testing.assert_array_equal(np.sort(result["spike_neurons"] * N_BINS + bins), np.sort(key))
        assert result["spike_counts"].sum() == raster.counts[inside].sum()
        assert bins.size < 0.6 * raster.nnz
        owned.append((start, min(stop, N_BINS)))
    # none of the other chunk's spikes beyond the halo
    (_, stop0), (start1, _) = owned
    assert two_ranks["ranks"][0]["spike_bins"].max() < stop0 + WIDTH
    assert two_ranks["ranks"][1]["spike_bins"].min() >= start1 - WIDTH // 2 - 1
    assert stop0 == start1 and owned[0][0] == 0 and owned[1][1] == N_BINS


@pytest.mark.parametrize("epochs", [0, 1, 20])
@pytest.mark.parametrize("tag", ["f32", "f64"])
def test_loss_and_gradient_match_one_process(two_ranks, one_process, tag, epochs):
    """Epoch 0: the same initial logits. After 1 and 20 epochs: the same trained logits, loss and gradient."""
    rank0, rank1 = two_ranks["ranks"]
    tolerance = TOLERANCES[tag]
    keys = ["loss", "grad"] + (["history", "final", "logits"] if epochs else [])
    for key in keys:
        np.testing.assert_array_equal(rank0[f"{tag}_{key}_{epochs}"], rank1[f"{tag}_{key}_{epochs}"],
                                      err_msg=f"{key}: the ranks differ")
    got = {key: rank0[f"{tag}_{key}_{epochs}"] for key in keys}
    expected = {key: one_process[f"{tag}_{key}_{epochs}"] for key in keys}
    rtol, atol = tolerance["loss"]
    np.testing.assert_allclose(got["loss"], expected["loss"], rtol=rtol, atol=atol)
    largest = np.abs(expected["grad"]).max()
    assert largest > 0
    rtol, fraction = tolerance["grad"]
    np.testing.assert_allclose(got["grad"], expected["grad"], rtol=rtol, atol=fraction * largest)
    if epochs:
        rtol, atol = tolerance["loss"]
        assert got["history"].shape == (epochs, N_FILTERS)
        np.testing.assert_allclose(got["history"], expected["history"], rtol=rtol, atol=atol)
        np.testing.assert_allclose(got["final"], expected["final"], rtol=rtol, atol=atol)
        np.testing.assert_allclose(got["logits"], expected["logits"], rtol=0, atol=tolerance["logits"])
        # training moved the filters: the comparison is not of the initial logits again
        initial = _initial_logits(torch.float32 if tag == "f32" else torch.float64).numpy()
        assert np.abs(got["logits"] - initial).max() > 0.05


@pytest.mark.parametrize("tag", ["f32", "f64"])
def test_recentring_shifts_match_one_process(two_ranks, one_process, tag):
    rank0, rank1 = two_ranks["ranks"]
    expected = one_process[f"{tag}_shifts_20"]
    assert expected.shape == (3, N_FILTERS)  # after epochs 5, 10 and 15
    np.testing.assert_array_equal(rank0[f"{tag}_shifts_20"], expected)
    np.testing.assert_array_equal(rank1[f"{tag}_shifts_20"], expected)
    assert np.any(expected != 0), "no pattern moved: re-centring was not exercised"
    assert rank0[f"{tag}_shifts_1"].size == 0  # no re-centring in a one-epoch run


def test_ranks_with_different_seeds_are_refused(two_ranks):
    for result in two_ranks["ranks"]:
        assert "same seed on every rank" in str(result["seed_error"])


def test_two_ranks_finish_quickly(two_ranks):
    assert two_ranks["wall_s"] < 120


# ---------------------------------------------------------------------------------------------
# chunks, in one process
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("width", [2, 7, 50, 51])
@pytest.mark.parametrize("world_size", [1, 2, 3, 8])
def test_chunks_tile_the_times_and_hold_every_bin_their_windows_read(width, world_size):
    n_bins = 1001
    length = response_length(n_bins, width)
    chunks = [chunk_bounds(n_bins, width, world_size, rank) for rank in range(world_size)]
    assert chunks[0].start == 0 and chunks[-1].stop == length
    assert all(a.stop == b.start for a, b in zip(chunks, chunks[1:]))
    owned = np.concatenate([np.arange(*chunk.owned_bins) for chunk in chunks])
    np.testing.assert_array_equal(owned, np.arange(n_bins))
    half = width // 2
    for chunk in chunks:
        first_read = max(0, chunk.response_start - half)
        last_read = min(n_bins - 1, chunk.stop - 1 - half + width - 1)
        assert chunk.bin_start == first_read and chunk.bin_stop == last_read + 1
        assert chunk.n_chunk_bins <= chunk.stop - chunk.start + width + 1
        assert chunk.response_slice.stop <= response_length(chunk.n_chunk_bins, width)


def test_chunk_responses_equal_the_whole_responses():
    rng = np.random.default_rng(5)
    raster = SpikeRaster.from_dense(rng.poisson(0.2, size=(6, 400)))
    width = 21
    filters = torch.softmax(torch.as_tensor(rng.normal(size=(3, 6, width))), dim=-1)
    whole = make_response(raster, width, dtype=torch.float64)(filters).numpy()
    parts = []
    for rank in range(3):
        chunk = chunk_bounds(raster.n_bins, width, 3, rank)
        local = make_response(chunk.slice_raster(raster), width, dtype=torch.float64)(filters).numpy()
        parts.append(local[:, chunk.owned_slice])
    np.testing.assert_allclose(np.concatenate(parts, axis=1), whole, rtol=1e-12, atol=1e-12)


def test_chunk_from_spike_times_bins_as_the_whole_raster_does():
    rng = np.random.default_rng(1)
    times = np.concatenate([rng.uniform(0.0, 2.0, 2000),
                            [0.0, 0.3, 0.3 - 1e-12, 1.2, 1.9999999999, 2.0, -0.01, 2.5]])  # edges and outside
    rows = rng.integers(0, 7, times.size)
    whole = SpikeRaster.from_row_times(times, rows, 7, 0.01, 0.0, 2.0)
    for rank in range(3):
        chunk = chunk_bounds(whole.n_bins, 16, 3, rank)
        got = chunk_from_spike_times(times, rows, 7, 0.01, 0.0, 2.0, chunk)
        expected = chunk.slice_raster(whole)
        assert got.n_bins == expected.n_bins == chunk.n_chunk_bins
        np.testing.assert_array_equal(got.neuron_index, expected.neuron_index)
        np.testing.assert_array_equal(got.bin_index, expected.bin_index)
        np.testing.assert_array_equal(got.counts, expected.counts)
        assert got.t_start_s == expected.t_start_s


def test_one_process_without_a_group_trains_like_train_filters():
    rng = np.random.default_rng(2)
    raster = SpikeRaster.from_dense(rng.poisson(0.05, size=(12, 600)))
    settings = TrainingSettings(tv_weight=2.0, explained_weight=1.0, lr=0.1, max_epochs=12, min_epochs=12, tol=0.0,
                                patience=3, recenter_every=4)
    chunk = chunk_bounds(raster.n_bins, 16, 1, 0)
    train = np.ones((2, chunk.n_responses), dtype=bool)
    explained = np.zeros_like(train)
    explained[:, 200:260] = True
    outcome = train_filters_distributed(chunk.slice_raster(raster), chunk, train, explained, settings, random_state=7)
    whole = ResponseObjective(make_response(raster, 16), raster, torch.as_tensor(train), torch.as_tensor(explained),
                              settings)
    reference = train_filters(whole, 2, settings, torch_generator(check_random_state(7)))
    rtol, atol = TOLERANCES["f32"]["loss"]
    np.testing.assert_allclose(outcome.loss_history, reference.loss_history, rtol=rtol, atol=atol)
    np.testing.assert_allclose(outcome.logits.numpy(), reference.logits.numpy(), rtol=0,
                               atol=TOLERANCES["f32"]["logits"])


def _small():
    raster = SpikeRaster.from_dense(np.random.default_rng(0).poisson(0.1, size=(5, 200)))
    chunk = chunk_bounds(raster.n_bins, 10, 1, 0)
    train = np.ones((2, chunk.n_responses), dtype=bool)
    return raster, chunk, train, _settings(2)


def test_bad_input_is_refused_before_training():
    raster, chunk, train, settings = _small()
    local = chunk.slice_raster(raster)
    explained = np.zeros_like(train)
    with pytest.raises(ValueError, match="chunk holds"):
        train_filters_distributed(raster.time_slice(0, 150), chunk, train, explained, settings)
    with pytest.raises(ValueError, match="train_mask must have shape"):
        train_filters_distributed(local, chunk, train[:, 1:], explained, settings)
    with pytest.raises(TypeError, match="explained_mask must be a boolean"):
        train_filters_distributed(local, chunk, train, explained.astype(int), settings)
    with pytest.raises(TypeError, match="settings"):
        train_filters_distributed(local, chunk, train, explained, {"lr": 0.1})
    with pytest.raises(TypeError, match="raster must be a SpikeRaster"):
        train_filters_distributed(raster.to_dense(), chunk, train, explained, settings)
    with pytest.raises(ValueError, match="initial_logits"):
        train_filters_distributed(local, chunk, train, explained, settings, initial_logits=torch.zeros(2, 5, 9))
    with pytest.raises(TypeError, match="initial_logits must be a torch.Tensor"):
        train_filters_distributed(local, chunk, train, explained, settings, initial_logits=np.zeros((2, 5, 10)))
    with pytest.raises(ValueError, match="rank must lie"):
        chunk_bounds(200, 10, 2, 2)
    with pytest.raises(ValueError, match="cannot be split"):
        chunk_bounds(3, 2, 8, 0)
    with pytest.raises(ValueError, match="0 <= start < stop"):
        TimeChunk(200, 10, 5, 5)
    with pytest.raises(ValueError, match="but chunk was cut from 200"):
        chunk_from_spike_times([0.1], [0], 5, 0.01, 0.0, 1.0, chunk)


def test_chunks_that_do_not_tile_the_recording_are_refused():
    raster, _, _, settings = _small()
    half = chunk_bounds(raster.n_bins, 10, 2, 0)  # one process holding only the first half
    local = half.slice_raster(raster)
    train = np.ones((2, half.n_responses), dtype=bool)
    with pytest.raises(ValueError, match="tile"):
        ChunkedResponseObjective(make_response(local, 10), local, half, train, np.zeros_like(train), settings)
