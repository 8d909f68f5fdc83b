"""Fitting the refusal (rag/eval/calibrate.py): the threshold keeps false
refusals low on every question set, and the confidence bands are cut where
their answers are right as often as the bands promise."""
from __future__ import annotations

import numpy as np

from rag.eval.calibrate import choose_bands, choose_threshold


def test_the_threshold_keeps_false_refusals_within_bounds_on_every_set():
    scores = np.array([0.9, 0.8, 0.3, 0.4, 0.35, 0.95, 0.2])
    answerable = np.array([True, True, False, False, True, True, False])
    correct = answerable.copy()
    sets = np.array(["a", "a", "a", "a", "a", "b", "b"])
    free = choose_threshold(scores, answerable, correct)
    assert 0.4 < free < 0.8  # refuses both unanswerable questions of "a", and one answerable one
    bounded = choose_threshold(scores, answerable, correct, sets=sets, max_false_refusals=0.05)
    assert 0.3 < bounded <= 0.35  # may refuse no answerable question of either set


def test_bands_are_cut_where_their_answers_are_right_as_promised():
    scores = np.array([0.99, 0.98, 0.97, 0.96, 0.95, 0.9, 0.8, 0.7, 0.6, 0.5])
    correct = np.array([True] * 5 + [False] + [True, False, True, False])
    high, medium = choose_bands(scores, correct, threshold=0.55)
    assert high == 0.95  # the five above it are all right; taking 0.9 too would make it 5/6
    assert 0.55 <= medium <= 0.8
    never, _ = choose_bands(scores, np.zeros(10, dtype=bool), threshold=0.55)
    assert never == 1.0  # no cut is right 95 % of the time: 高 is never shown
