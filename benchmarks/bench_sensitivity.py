"""Weak, replay-like sequences and several patterns: convseq_neo against the paper's in-sample pattern.

Run::

    CONVSEQ_DATA_DIR=../shared/data .venv/bin/python benchmarks/bench_sensitivity.py --quick   # in `make bench`
    CONVSEQ_DATA_DIR=../shared/data .venv/bin/python benchmarks/bench_sensitivity.py --full    # in `make bench-full`

The full run takes hours on 2 cores; every finished job is appended to
``results/bench_sensitivity[_quick].jsonl`` and a rerun with ``--resume`` skips it, so the grid can be
run in pieces (``--sections``, ``--seeds``) or in parallel processes (``--shard 0/2`` and ``--shard 1/2``);
the summary, heat maps and tables are rebuilt from all rows at the end of each run (``--report`` only
rebuilds them). ``--check-frozen`` prints the largest difference between the frozen comparator's responses
and ``ConvSeq(significance="random_filters")``'s (0 when the package still computes them the same way).

Sections (seeds 0-2 per cell unless stated; a seed draws the background, the plant and the fits):

- ``grid``: the CA1 raster (452 x 18,137 frames of 50 ms) with every neuron's inter-spike intervals
  shuffled (``shuffle_isis_raster(random_state=seed)``), and a 120-member linear sequence (members 1
  bin apart) planted every 400 bins, each member spike kept with probability ``participation`` and
  jittered by ``N(0, jitter^2)`` bins: participation {0.3, 0.4, 0.5, 0.6, 0.8} x jitter {5, 10, 20,
  30} bins, on the whole background (45 occurrences) and on its first 6,000 bins (the *crop*, 14
  occurrences). ``W = 200`` bins.
- ``multi``: on the whole background, K = 2 and K = 3 disjoint 60-member sequences, and a forward /
  reverse pair on the same 60 neurons, at participation 0.6 and 0.8, jitter 10 bins; the K
  sequences take the 400-bin slots in turn (slot ``i`` holds sequence ``i mod K``), so each has
  about ``45 / K`` occurrences. ``ConvSeq(n_patterns=K, width=200)``.
- ``detect``: the same layouts with 15-member sequences through ``detect``: 80 Poisson neurons at
  2 Hz, 180 s, 30 occurrences per sequence at random times, member steps drawn uniformly in 5-15
  ms, participation 0.85, jitter 1 ms, ``bin_size = 5 ms`` and ``width`` = twice the planted span
  rounded up to 50 ms (set from the planted time scale, never searched).
- ``short``: short recordings like the issue's: 75 neurons with 5 % background per bin, a 20-member
  sequence spanning 10 bins at participation 0.8, 8, 12 or 15 occurrences in 444 bins per 8
  occurrences, ``width = 20``; seeds 0-4; and 15 occurrences at participation 0.5 (``--full``).
  Also scores the members named.
- ``recipe``: the paper's own recipe (``reference_recipe``: seqlen 120, p_drop 0.1, gap 400, jitter
  10) on the whole background.
- ``elephant``: ``bench_vs_elephant``'s short sequences (6 members 5 ms apart in 50 or 100 neurons
  at 5 Hz, 60 s, 30 occurrences), ``detect`` with its bin size and width; SPADE's and CAD's F1 are
  read from ``results/bench_vs_elephant.json`` (not rerun).

Methods:

- ``convseq_neo``: ``ConvSeq`` / ``detect`` with default options (cross-fitted significance,
  dither surrogates, ``alpha = 0.05``). Score of a candidate: ``-log10(p)`` (ties broken by height).
- ``paper``: the paper's in-sample pattern, frozen in ``_paper_pattern.py`` before any change to the
  detector (4,000 epochs of full-batch Adam, the random-filter threshold, ``find_peaks`` at distance
  ``W``), scored by peak height; only on ``grid`` and ``recipe`` (it learns one pattern).

Scoring: a one-to-one match of detections to planted centres within 50 bins (``grid``, ``multi``,
``recipe``), or half the planted span plus 2 bins (``detect``, ``short``, ``elephant``, as in
``bench_vs_elephant``). "own": each method's own significance (``alpha``, or the random-filter
threshold). "matched": each method's threshold set on the same seed's background without the
plant so that it makes at most 0.5 false detections per minute there (``floor(0.5 * minutes)``
detections), then applied to the planted recording. With several patterns, learned patterns are
assigned to planted ones one-to-one by F1 (Hungarian).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, WIDTH, ca1_raster, machine, save  # noqa: E402
from _paper_pattern import fit_paper_pattern  # noqa: E402

TOLERANCE = 50
FRAME_S = 0.05
GAP = 400
FALSE_RATE = 0.5
CROP = 6000
PARTICIPATION = (0.3, 0.4, 0.5, 0.6, 0.8)
JITTER = (5, 10, 20, 30)
MULTI = (("K=2", 2), ("K=3", 3), ("fwd/rev", 2))
SHORT_WEAK = 0.5  # participation of the short section's weaker case
QUICK_CELLS = ((0.3, 30), (0.6, 20))


# ---------------------------------------------------------------------------------------------- recordings
_BACKGROUNDS: dict[int, np.ndarray] = {}


def background(seed: int, crop: bool) -> np.ndarray:
    from convseq_neo.synthetic.generate import shuffle_isis_raster

    if seed not in _BACKGROUNDS:
        _BACKGROUNDS[seed] = shuffle_isis_raster((ca1_raster() > 0).astype(np.int8), random_state=seed)
    full = _BACKGROUNDS[seed]
    return np.ascontiguousarray(full[:, :CROP]) if crop else full


def plant(bg: np.ndarray, rng: np.random.Generator, sequences: list[np.ndarray], jitter: float, keep: float):
    """Slot ``i`` (every ``GAP`` bins) holds sequence ``i mod K``; returns the raster and each sequence's centres."""
    raster = bg.copy()
    n_bins = raster.shape[1]
    starts = np.arange(0, n_bins - GAP, GAP)
    truth = [[] for _ in sequences]
    for slot, start in enumerate(starts):
        members = sequences[slot % len(sequences)]
        bins = start + np.arange(members.size) + np.round(rng.normal(0, jitter, members.size)).astype(int)
        kept = (rng.random(members.size) < keep) & (bins >= 0) & (bins < n_bins)
        raster[members[kept], bins[kept]] = 1
        truth[slot % len(sequences)].append(start + (members.size - 1) / 2.0)
    return raster, [np.asarray(t) for t in truth]


def grid_recording(seed: int, crop: bool, participation: float, jitter: float):
    bg = background(seed, crop)
    rng = np.random.default_rng([seed, round(participation * 100), round(jitter)])
    members = rng.choice(bg.shape[0], 120, replace=False)
    raster, truth = plant(bg, rng, [members], jitter, participation)
    return raster, truth


def multi_recording(seed: int, layout: str, participation: float):
    bg = background(seed, False)
    rng = np.random.default_rng([seed, round(participation * 100), 1 + [m[0] for m in MULTI].index(layout)])
    neurons = rng.permutation(bg.shape[0])
    if layout == "fwd/rev":
        sequences = [neurons[:60], neurons[:60][::-1]]
    else:
        sequences = [neurons[60 * k:60 * (k + 1)] for k in range(dict(MULTI)[layout])]
    return plant(bg, rng, sequences, 10.0, participation)


def detect_recording(seed: int, layout: str):
    import quantities as pq

    from convseq_neo.synthetic.generate import plant_sequences, poisson_background

    trains = poisson_background(80, 2 * pq.Hz, 0 * pq.s, 180 * pq.s, random_state=seed)
    rng = np.random.default_rng([seed, 15, 1 + [m[0] for m in MULTI].index(layout)])
    neurons = rng.permutation(80)
    n_sequences = dict(MULTI)[layout]
    members = [neurons[:15], neurons[:15][::-1]] if layout == "fwd/rev" else \
        [neurons[15 * k:15 * (k + 1)] for k in range(n_sequences)]
    lags = []
    for _ in members:
        lags.append(np.concatenate([[0.0], np.cumsum(rng.uniform(0.005, 0.015, 14))]))
    if layout == "fwd/rev":
        lags[1] = lags[0]
    planted, truth = plant_sequences(trains, members, lags=[lag * pq.s for lag in lags], n_occurrences=30,
                                     participation=0.85, jitter=1 * pq.ms, random_state=rng)
    span = max(float(lag.max()) for lag in lags)
    centres = truth.centers.rescale("s").magnitude
    return planted, [centres[truth.pattern_id == k] for k in range(len(members))], span


def short_recording(seed: int, n_occurrences: int, participation: float = 0.8):
    """75 neurons, 5 % background per bin, a 20-member sequence spanning 10 bins at ``participation``."""
    from convseq_neo.synthetic.even_raster import evenly_planted_raster

    planted = evenly_planted_raster(n_occurrences, participation=participation,
                                    random_state=np.random.default_rng([seed, n_occurrences]))
    return planted.raster, planted.centres, planted.members


# ---------------------------------------------------------------------------------------------- methods
def convseq_outcome(model) -> dict:
    occ = model.occurrences_
    pvalues = occ["pvalue"].to_numpy(dtype=float)
    scores = -np.log10(np.clip(pvalues, 1e-300, 1)) + 1e-6 * occ["peak"].to_numpy(dtype=float)
    return {"pattern": occ["pattern"].to_numpy(dtype=int).tolist(), "centres": occ["center"].to_numpy(float).tolist(),
            "scores": scores.tolist(), "own": occ["significant"].to_numpy(bool).tolist()}


def fit_convseq(raster: np.ndarray, seed: int, threads: int, n_patterns: int = 1, width: int = WIDTH,
                objective: str = "variance", decorrelation_weight: float | None = None,
                second_pass: bool = False) -> dict:
    from convseq_neo import ConvSeq

    started = time.perf_counter()
    model = ConvSeq(n_patterns=n_patterns, width=width, random_state=seed, n_jobs=threads,
                    objective=objective, decorrelation_weight=decorrelation_weight,
                    second_pass=second_pass).fit(raster)
    out = convseq_outcome(model)
    out.update(seconds=time.perf_counter() - started,
               members=[model.membership_.loc[(model.membership_["pattern"] == k) & model.membership_["member"],
                                              "neuron"].tolist() for k in range(n_patterns)])
    return out


def fit_paper(raster: np.ndarray, seed: int, epochs: int) -> dict:
    started = time.perf_counter()
    out = fit_paper_pattern(raster, WIDTH, epochs=epochs, seed=seed)
    centres, scores = out["centres"][0], out["scores"][0]
    return {"pattern": [0] * len(centres), "centres": centres.tolist(), "scores": scores.tolist(),
            "own": (scores > out["threshold"]).tolist(), "seconds": time.perf_counter() - started}


def matched_threshold(scores, minutes: float) -> float:
    allowed = int(math.floor(FALSE_RATE * minutes + 1e-9))
    ordered = np.sort(np.asarray(scores, dtype=float))[::-1]
    return float(ordered[allowed]) if ordered.size > allowed else -np.inf


def f1_by_pattern(outcome: dict, truth: list[np.ndarray], tolerance: float, threshold: float | None) -> list[float]:
    """Each planted sequence's F1 with its learned pattern (one-to-one by F1); ``threshold=None``: own significance."""
    from scipy.optimize import linear_sum_assignment

    from convseq_neo.synthetic.evaluate import match_events

    pattern = np.asarray(outcome["pattern"], dtype=int)
    centres = np.asarray(outcome["centres"], dtype=float)
    chosen = np.asarray(outcome["own"], dtype=bool) if threshold is None else \
        np.asarray(outcome["scores"], dtype=float) > threshold
    learned = sorted(set(pattern.tolist())) or [0]
    f1 = np.zeros((len(truth), len(learned)))
    for i, true in enumerate(truth):
        for j, k in enumerate(learned):
            f1[i, j] = match_events(centres[chosen & (pattern == k)], true, tolerance).f1
    rows, cols = linear_sum_assignment(-f1)
    best = np.zeros(len(truth))
    best[rows] = f1[rows, cols]
    return best.round(4).tolist()


# ---------------------------------------------------------------------------------------------- jobs
def jobs(sections: list[str], seeds: list[int], quick: bool, backgrounds: str = "crop,whole") -> list[dict]:
    out = []
    if "grid" in sections:
        crops = (True,) if quick else tuple(name == "crop" for name in backgrounds.split(","))
        cells = QUICK_CELLS if quick else [(p, j) for p in PARTICIPATION for j in JITTER]
        for seed in seeds:
            for crop in crops:
                for method in ("convseq_neo", "paper"):
                    out.append({"section": "grid", "kind": "background", "crop": crop, "seed": seed, "method": method})
                for participation, jitter in cells:
                    for method in ("convseq_neo", "paper"):
                        out.append({"section": "grid", "kind": "planted", "crop": crop, "seed": seed,
                                    "participation": participation, "jitter": jitter, "method": method})
    if "multi" in sections and not quick:
        for seed in seeds:
            for layout, _ in MULTI:
                for participation in (0.6, 0.8):
                    out.append({"section": "multi", "layout": layout, "participation": participation, "seed": seed,
                                "method": "convseq_neo"})
    if "detect" in sections:
        for seed in seeds:
            for layout, _ in (MULTI[:1] if quick else MULTI):
                out.append({"section": "detect", "layout": layout, "seed": seed, "method": "convseq_neo"})
    if "short" in sections:
        for seed in (range(3) if quick else range(5)):
            for n_occurrences in ((8,) if quick else (8, 12, 15)):
                out.append({"section": "short", "n_occurrences": n_occurrences, "seed": seed, "method": "convseq_neo"})
            if not quick:  # issue 21's weaker case: participation 0.5, 15 occurrences
                out.append({"section": "short", "n_occurrences": 15, "participation": SHORT_WEAK, "seed": seed,
                            "method": "convseq_neo"})
    if "recipe" in sections and not quick:
        for seed in seeds:
            for method in ("convseq_neo", "paper"):  # its threshold comes from the grid's whole background
                out.append({"section": "grid", "kind": "background", "crop": False, "seed": seed, "method": method})
                out.append({"section": "recipe", "kind": "planted", "seed": seed, "method": method})
    if "elephant" in sections:
        for recording in (("50n/6seq",) if quick else ("50n/6seq", "100n/6seq")):
            out.append({"section": "elephant", "recording": recording, "seed": 0, "method": "convseq_neo"})
    unique = {job_key(job): job for job in out}
    return list(unique.values())


def job_key(job: dict) -> str:
    return json.dumps({k: job[k] for k in sorted(job)}, sort_keys=True)


def run_job(job: dict, args) -> dict:
    section, seed, method = job["section"], job["seed"], job["method"]
    if section == "grid" and job.get("kind") == "background":
        raster = background(seed, job["crop"])
        fit = (fit_convseq(raster, seed, args.threads, objective=args.objective) if method == "convseq_neo"
               else fit_paper(raster, seed, args.epochs))
        return {"scores": fit["scores"], "own_false": int(np.sum(fit["own"])), "seconds": fit["seconds"],
                "minutes": raster.shape[1] * FRAME_S / 60}
    if section == "grid":
        raster, truth = grid_recording(seed, job["crop"], job["participation"], job["jitter"])
    elif section == "recipe":
        from convseq_neo.synthetic.generate import reference_recipe

        recipe = reference_recipe(background(seed, False), random_state=seed)
        raster, truth = recipe.raster, [np.asarray(recipe.midpoints_bins, dtype=float)]
    if section in ("grid", "recipe"):
        fit = (fit_convseq(raster, seed, args.threads, objective=args.objective) if method == "convseq_neo"
               else fit_paper(raster, seed, args.epochs))
        return {"fit": {k: fit[k] for k in ("pattern", "centres", "scores", "own")},
                "truth": [t.tolist() for t in truth], "seconds": fit["seconds"],
                "f1_own": f1_by_pattern(fit, truth, TOLERANCE, None)}
    if section == "multi":
        raster, truth = multi_recording(seed, job["layout"], job["participation"])
        fit = fit_convseq(raster, seed, args.threads, n_patterns=len(truth), objective=args.objective,
                          decorrelation_weight=args.decorrelation_weight, second_pass=args.second_pass)
        return {"seconds": fit["seconds"], "f1_own": f1_by_pattern(fit, truth, TOLERANCE, None),
                "n_occurrences": [int(t.size) for t in truth]}
    if section == "detect":
        import quantities as pq

        from convseq_neo import detect

        trains, truth, span = detect_recording(seed, job["layout"])
        width = math.ceil(2 * span / 0.05 - 1e-9) * 0.05
        started = time.perf_counter()
        result = detect(trains, bin_size=5 * pq.ms, width=width * pq.s, n_patterns=len(truth), random_state=seed,
                        n_jobs=args.threads, objective=args.objective, second_pass=args.second_pass,
                        decorrelation_weight=args.decorrelation_weight)
        fit = convseq_outcome(result.model)
        fit["centres"] = np.asarray(result.raster.position_to_time(np.asarray(fit["centres"])), dtype=float).tolist()
        return {"seconds": time.perf_counter() - started, "width_s": width,
                "f1_own": f1_by_pattern(fit, truth, span / 2 + 0.010, None)}
    if section == "short":
        raster, truth, members = short_recording(seed, job["n_occurrences"], job.get("participation", 0.8))
        fit = fit_convseq(raster, seed, args.threads, width=20, objective=args.objective,
                          second_pass=args.second_pass)
        named = np.asarray(fit["members"][0], dtype=int)
        return {"seconds": fit["seconds"], "f1_own": f1_by_pattern(fit, [truth], 7.0, None),
                "members_named": int(np.isin(named, members).sum()),
                "false_members": int((~np.isin(named, members)).sum())}
    if section == "elephant":
        from bench_vs_elephant import LAG_S, make_recording, run_convseq, score

        n_neurons, n_members, rec_seed = {"50n/6seq": (50, 6, 0), "100n/6seq": (100, 6, 10)}[job["recording"]]
        _, planted, truth = make_recording(n_neurons, n_members, 60.0, 5.0, rec_seed)
        span = (n_members - 1) * LAG_S
        out = run_convseq(planted, max(0.05, math.ceil(2 * span / 0.05 - 1e-9) * 0.05), args.objective)
        scored = score(out["patterns"], np.sort(truth.centers.rescale("s").magnitude),
                       set(int(n) for n in truth.members[0]), span / 2 + 2 * 0.005)
        return {"seconds": out["seconds"], "f1_own": [scored.get("f1", 0.0)], "detail": scored}
    raise ValueError(f"unknown job {job}")


# ---------------------------------------------------------------------------------------------- report
def _mean(values):
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else None


def summarise(rows: list[dict]) -> dict:
    """Matched-rate and own-significance F1 per cell, mean over the seeds present."""
    by_key = {job_key(r["job"]): r for r in rows}
    summary = {"grid": {}, "recipe": {}, "multi": {}, "detect": {}, "short": {}, "elephant": {}}
    for row in rows:
        job = row["job"]
        section = job["section"]
        if section in ("grid", "recipe") and job.get("kind") == "planted":
            crop = job.get("crop", False)
            bg_job = {"section": "grid", "kind": "background", "crop": crop, "seed": job["seed"],
                      "method": job["method"]}
            bg = by_key.get(job_key(bg_job))
            truth = [np.asarray(t) for t in row["truth"]]
            matched = None
            if bg is not None:
                threshold = matched_threshold(bg["scores"], bg["minutes"])
                matched = f1_by_pattern(row["fit"], truth, TOLERANCE, threshold)[0]
            cell = ("crop" if crop else "whole", job.get("participation"), job.get("jitter")) if section == "grid" \
                else ("recipe",)
            entry = summary[section].setdefault(json.dumps(cell), {}).setdefault(job["method"],
                                                                                 {"matched": {}, "own": {}})
            entry["matched"][job["seed"]] = matched
            entry["own"][job["seed"]] = row["f1_own"][0]
        elif section in ("multi", "detect"):
            cell = json.dumps([job["layout"], job.get("participation")])
            summary[section].setdefault(cell, {})[job["seed"]] = row["f1_own"]
        elif section == "short":
            cell = f"{job['n_occurrences']} at {job.get('participation', 0.8):g}"
            summary["short"].setdefault(cell, {})[job["seed"]] = {
                "f1": row["f1_own"][0], "members_named": row["members_named"], "false_members": row["false_members"]}
        elif section == "elephant":
            summary["elephant"][job["recording"]] = {"f1": row["f1_own"][0], "detail": row.get("detail")}
    for entry in summary["grid"].values():  # a grid still being measured: compare the seeds both methods have
        if len(entry) == 2:
            common = set.intersection(*(set(method["own"]) for method in entry.values()))
            for method in entry.values():
                for score in ("matched", "own"):
                    method[score] = {seed: value for seed, value in method[score].items() if seed in common}
    return summary


def tables(summary: dict) -> str:
    lines = []
    grid = summary["grid"]
    if grid:
        lines.append("grid (mean over seeds; F1 at a matched 0.5 false/min | at own significance)")
        lines.append(f"{'background':>10} {'p':>4} {'jitter':>6} | {'convseq_neo':>17} | {'paper':>17} | "
                     f"{'difference':>10} | seeds")
        for cell in sorted(grid, key=lambda c: json.loads(c)):
            name, participation, jitter = json.loads(cell)
            entry = grid[cell]
            ours, paper = entry.get("convseq_neo", {}), entry.get("paper", {})
            om, oo = _mean(ours.get("matched", {}).values()), _mean(ours.get("own", {}).values())
            pm, po = _mean(paper.get("matched", {}).values()), _mean(paper.get("own", {}).values())
            diff = None if om is None or pm is None else om - pm
            seeds = sorted(set(ours.get("own", {})) | set(paper.get("own", {})), key=int)
            lines.append(f"{name:>10} {participation:>4g} {jitter:>6g} | {_f(om)} | {_f(oo)} | {_f(pm)} | {_f(po)} | "
                         f"{_f(diff, '{:+.2f}'):>10} | {','.join(map(str, seeds))}")
    if summary["recipe"]:
        for method, entry in summary["recipe"].get('["recipe"]', {}).items():
            seeds = ",".join(map(str, sorted(entry["own"], key=int)))
            lines.append(f"paper's recipe, {method}: F1 matched {_f(_mean(entry['matched'].values()))}, own "
                         f"{_f(_mean(entry['own'].values()))} (seeds {seeds})")
    for section, title in (("multi", "several patterns on CA1 (each planted sequence's F1, own significance)"),
                           ("detect", "15-member sequences through detect (each sequence's F1, own significance)")):
        if summary[section]:
            lines.append(title)
            for cell, seeds in sorted(summary[section].items()):
                layout, participation = json.loads(cell)
                per = np.array([seeds[s] for s in sorted(seeds, key=int)])
                lines.append(f"  {layout:>8} {'' if participation is None else f'p={participation:g}':>6}: mean "
                             f"{' / '.join(f'{v:.2f}' for v in per.mean(axis=0))}; per seed "
                             + "; ".join(f"{s}: " + "/".join(f"{v:.2f}" for v in seeds[s])
                                         for s in sorted(seeds, key=int)))
    if summary["short"]:
        lines.append("short recordings (75 neurons, 20 members; F1, members named / false)")
        for cell, seeds in sorted(summary["short"].items(), key=lambda kv: (-float(kv[0].split()[-1]),
                                                                            int(kv[0].split()[0]))):
            values = [seeds[s] for s in sorted(seeds, key=int)]
            n_occ, participation = cell.split(" at ")
            mean_f1 = np.mean([v['f1'] for v in values])
            lines.append(f"  {n_occ:>2} occurrences at participation {participation}: mean F1 {mean_f1:.2f}; per seed "
                         + "; ".join(f"{v['f1']:.2f} ({v['members_named']}/{v['false_members']})" for v in values))
    if summary["elephant"]:
        spade = _elephant_reference()
        for recording, entry in summary["elephant"].items():
            lines.append(f"short sequence {recording}: convseq_neo F1 {entry['f1']:.2f}; from bench_vs_elephant.json: "
                         + ", ".join(f"{k} {v:.2f}" for k, v in spade.get(recording, {}).items()))
    return "\n".join(lines)


def _elephant_reference() -> dict:
    path = RESULTS / "bench_vs_elephant.json"
    if not path.exists():
        return {}
    out = {}
    for row in json.loads(path.read_text()).get("rows", []):
        planted = row.get("planted", {})
        if row.get("method") in ("spade", "cad") and planted.get("f1") is not None:
            out.setdefault(row["recording"], {})[row["method"]] = float(planted["f1"])
    return out


def _f(value, spec="{:.2f}"):
    return f"{'-':>4}" if value is None else spec.format(value)


def plot(summary: dict, path: Path) -> bool:
    """The grid's heat maps into ``path``; False (nothing written) when there is no grid row."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grid = summary["grid"]
    backgrounds = [b for b in ("crop", "whole") if any(json.loads(c)[0] == b for c in grid)]
    if not backgrounds:
        return False
    fig, axes = plt.subplots(len(backgrounds), 3, figsize=(12, 3.6 * len(backgrounds)), squeeze=False)
    for row, name in enumerate(backgrounds):
        maps = {m: np.full((len(PARTICIPATION), len(JITTER)), np.nan) for m in ("convseq_neo", "paper")}
        cell_seeds = []
        for cell, entry in grid.items():
            bg, participation, jitter = json.loads(cell)
            if bg != name:
                continue
            i, j = PARTICIPATION.index(participation), JITTER.index(jitter)
            for method in maps:
                value = _mean(entry.get(method, {}).get("matched", {}).values())
                maps[method][i, j] = np.nan if value is None else value
            cell_seeds.append(set.intersection(*(set(entry.get(method, {}).get("matched", {})) for method in maps)))
        every, some = set.intersection(*cell_seeds), set.union(*cell_seeds)
        seeds = ",".join(map(str, sorted(every)))
        if some != every:  # a grid still being measured: say which cells have more
            more = sum(len(s) > len(every) for s in cell_seeds)
            seeds += f" ({','.join(map(str, sorted(some)))} in {more} cell{'s' if more > 1 else ''})"
        panels = [("convseq_neo", maps["convseq_neo"], "viridis", (0, 1)), ("paper's pattern", maps["paper"],
                  "viridis", (0, 1)), ("difference", maps["convseq_neo"] - maps["paper"], "RdBu", (-1, 1))]
        for col, (title, values, cmap, limits) in enumerate(panels):
            ax = axes[row, col]
            image = ax.imshow(values, cmap=cmap, vmin=limits[0], vmax=limits[1], origin="lower", aspect="auto")
            for (i, j), value in np.ndenumerate(values):
                if np.isfinite(value):
                    ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=8,
                            color="white" if (cmap == "viridis" and value < 0.5) else "black")
            ax.set_xticks(range(len(JITTER)), [str(j) for j in JITTER])
            ax.set_yticks(range(len(PARTICIPATION)), [str(p) for p in PARTICIPATION])
            ax.set_xlabel("jitter (bins)")
            ax.set_ylabel("participation")
            ax.set_title(f"{title}, {name} background\nF1 at 0.5 false/min, seeds {seeds}", fontsize=9)
            fig.colorbar(image, ax=ax, fraction=0.046)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def check_frozen(epochs: int) -> None:
    """Print the largest difference between the frozen comparator's and ConvSeq's responses (K = 1)."""
    from convseq_neo import ConvSeq

    raster, _ = grid_recording(0, True, 0.6, 20)
    frozen = fit_paper_pattern(raster, WIDTH, epochs=epochs, seed=0)
    model = ConvSeq(width=WIDTH, significance="random_filters", max_epochs=epochs, min_epochs=epochs, tol=0.0,
                    n_init=1, recenter_every=0, random_state=0).fit(raster)
    difference = float(np.abs(frozen["responses"][0] - model.responses_[0]).max())
    print(f"{epochs} epochs on the crop (participation 0.6, jitter 20, seed 0): largest |response difference| "
          f"{difference:.3g}; thresholds {frozen['threshold']:.6g} and {model.random_filter_threshold_:.6g}")


# ---------------------------------------------------------------------------------------------- main
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true",
                      help="two crop cells, seed 0; detect K=2; short recordings; one short sequence (default)")
    mode.add_argument("--full", action="store_true", help="every section and cell")
    parser.add_argument("--sections", default="grid,multi,detect,short,recipe,elephant")
    parser.add_argument("--seeds", type=int, nargs="+", default=None, help="default: 0 (quick) or 0 1 2 (full)")
    parser.add_argument("--backgrounds", default="crop,whole", help="grid backgrounds of --full: crop, whole")
    parser.add_argument("--epochs", type=int, default=4000, help="the paper's training epochs")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--objective", choices=("variance", "normalized"), default="variance",
                        help="ConvSeq(objective=...) of convseq_neo's fits; results get a _normalized suffix")
    parser.add_argument("--decorrelation-weight", type=float, default=None,
                        help="ConvSeq(decorrelation_weight=...) of the several-pattern fits (default: the "
                             "objective's); results get a _dw<value> suffix")
    parser.add_argument("--second-pass", action="store_true",
                        help="ConvSeq(second_pass=True) in the multi, detect and short sections' fits; results get a "
                             "_second_pass suffix")
    parser.add_argument("--resume", action="store_true", help="skip jobs already in the .jsonl")
    parser.add_argument("--shard", default="0/1", help="run every n-th job only: i/n")
    parser.add_argument("--report", action="store_true", help="only rebuild the summary from the .jsonl")
    parser.add_argument("--check-frozen", action="store_true",
                        help="compare the frozen paper's pattern with ConvSeq(significance='random_filters') over 300 "
                             "epochs (or --epochs) and exit")
    args = parser.parse_args()
    if args.check_frozen:
        check_frozen(args.epochs if args.epochs != 4000 else 300)
        return
    quick = not args.full
    seeds = args.seeds if args.seeds is not None else ([0] if quick else [0, 1, 2])
    name = "bench_sensitivity_quick" if quick else "bench_sensitivity"
    if args.objective != "variance":
        name += f"_{args.objective}"
    if args.decorrelation_weight is not None:
        name += f"_dw{args.decorrelation_weight:g}"
    if args.second_pass:
        name += "_second_pass"
    RESULTS.mkdir(exist_ok=True)
    rows_path = RESULTS / f"{name}.jsonl"
    command = " ".join([Path(sys.executable).name, *sys.argv])
    info = machine()
    print(f"command: {command}\nmachine: {json.dumps(info)}", flush=True)
    started = time.perf_counter()
    if not args.report:
        if not args.resume:
            rows_path.unlink(missing_ok=True)
        done = {json.loads(line)["key"] for line in rows_path.read_text().splitlines()} if rows_path.exists() else set()
        shard, n_shards = (int(x) for x in args.shard.split("/"))
        every = jobs(args.sections.split(","), seeds, quick, args.backgrounds)
        todo = [job for i, job in enumerate(every) if i % n_shards == shard]
        for job in todo:
            key = job_key(job)
            if key in done:
                continue
            t0 = time.perf_counter()
            result = run_job(job, args)
            with rows_path.open("a") as handle:
                handle.write(json.dumps({"key": key, "job": job, **result}, default=float) + "\n")
            brief = {k: v for k, v in result.items() if k not in ("fit", "truth", "scores", "detail")}
            print(f"{time.perf_counter() - t0:6.1f} s {key}: {json.dumps(brief, default=float)}", flush=True)
    rows = [json.loads(line) for line in rows_path.read_text().splitlines()] if rows_path.exists() else []
    summary = summarise(rows)
    text = tables(summary)
    total = time.perf_counter() - started
    print("\n" + text + f"\n\ntotal wall time {total:.0f} s; load average {os.getloadavg()}")
    plotted = plot(summary, RESULTS / f"{name}.png")
    path = save(name, {"summary": summary, "text": text, "total_seconds": total, "machine_extra": info,
                       "load_average_at_end": os.getloadavg(), "n_rows": len(rows)})
    print(f"wrote {path}, {rows_path}" + (f" and {RESULTS / (name + '.png')}" if plotted else ""))


if __name__ == "__main__":
    main()
