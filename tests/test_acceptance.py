"""Acceptance counts: per language and source, full and partial accepts, median latency."""

from __future__ import annotations

from codellama_ls.pipeline.acceptance import Acceptance


def test_counts_per_language_and_source():
    stats = Acceptance()
    first = stats.shown("python", "model", 120.0, ["total(x)", "count(x)"])
    second = stats.shown("python", "model", 80.0, ["len(x)"])
    stats.shown("python", "model", 300.0, ["never(taken)"])
    typed = stats.shown("python", "typed", 1.0, ["(x)"])
    rust = stats.shown("rust", "cache", 5.0, ["Vec::new()"])
    assert stats.accepted(first[1], "full", 8)  # the second suggestion: an alternative
    assert stats.accepted(second[0], "word", 3)
    assert stats.accepted(typed[0], "full", 3)
    assert stats.accepted(rust[0], "line", 10)  # a line that is the whole suggestion is all of it
    status = stats.status()
    model = status["byLanguage"]["python"]["model"]
    assert model == {
        "shown": 3,
        "accepted": 1,
        "partlyAccepted": 1,
        "acceptedAlternatives": 1,
        "rate": 0.3333,
        "medianAcceptedMs": 120.0,
    }
    assert status["byLanguage"]["python"]["typed"]["accepted"] == 1
    assert status["byLanguage"]["rust"]["cache"]["accepted"] == 1
    assert status["bySource"]["model"]["shown"] == 3 and status["bySource"]["cache"]["rate"] == 1.0


def test_partial_accepts_that_add_up_to_the_whole_suggestion_are_an_accept():
    stats = Acceptance()
    [item] = stats.shown("go", "model", 50.0, ["x := 1\ny := 2"])
    stats.accepted(item, "line", 6)
    counts = stats.status()["bySource"]["model"]
    assert (counts["accepted"], counts["partlyAccepted"]) == (0, 1)
    stats.accepted(item, "line", 7)
    counts = stats.status()["bySource"]["model"]
    assert (counts["accepted"], counts["partlyAccepted"]) == (1, 0)
    stats.accepted(item, "full", 13)  # the editor reporting it again does not count twice
    assert stats.status()["bySource"]["model"]["accepted"] == 1


def test_unknown_and_forgotten_ids_are_refused():
    stats = Acceptance(remembered=2)
    old = stats.shown("python", "model", 1.0, ["a"])
    stats.shown("python", "model", 1.0, ["b"])
    stats.shown("python", "model", 1.0, ["c"])
    assert not stats.accepted(old[0], "full", 1)  # too old to be remembered
    assert not stats.accepted("junk", "full", 1)
    assert not stats.accepted("3.5", "full", 1)  # no sixth suggestion in that answer
    assert stats.status()["bySource"]["model"]["accepted"] == 0
    assert stats.shown("", "model", 1.0, ["d"]) and "unknown" in stats.status()["byLanguage"]
