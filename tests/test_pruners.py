"""The pruners' rules on known learning curves: exactly the trials the rule names are stopped."""

import pytest

from autoft.tuner.pruners import AshaPruner, MedianPruner, PrunerConfig, best_so_far, make_pruner


def feed(pruner, curves, order="interleaved"):
    """Report ``curves`` ({key: [(step, score), ...]}); {key: (step, reason)} of the stopped trials.

    interleaved: step by step, trials in key order within a step (trials running side by side);
    sequential: each trial's whole curve before the next one's (one slot).
    """
    stopped = {}
    if order == "sequential":
        events = [(k, s, v) for k in sorted(curves) for s, v in curves[k]]
    else:
        events = sorted(((k, s, v) for k in curves for s, v in curves[k]), key=lambda e: (e[1], e[0]))
    for key, step, score in events:
        if key in stopped:
            continue  # the tuner has ended it; it reports nothing more
        reason = pruner.report(key, step, score)
        if reason:
            stopped[key] = (step, reason)
    return stopped


def linear(start, slope, steps=(100, 200, 300, 400, 500, 600, 700, 800, 900)):
    return [(s, start + slope * s / 100) for s in steps]


def test_best_so_far_takes_the_highest_report_up_to_the_step():
    curve = [(1, 0.5), (2, 0.7), (3, 0.6), (4, 0.9)]
    assert best_so_far(curve, 3) == 0.7
    assert best_so_far(curve, 4) == 0.9
    assert best_so_far(curve, 0) is None


def test_none_never_stops_a_trial():
    curves = {t: linear(0.1 * t, 0.01) for t in range(6)}
    assert feed(make_pruner(PrunerConfig("none")), curves) == {}


def test_median_stops_the_trials_below_the_median_once_enough_trials_reached_the_step():
    # Four good trials (0.70..0.73 at step 100, rising), two laggards (0.50, 0.55).
    curves = {0: linear(0.70, 0.01), 1: linear(0.71, 0.01), 2: linear(0.72, 0.01), 3: linear(0.73, 0.01),
              4: linear(0.50, 0.01), 5: linear(0.55, 0.01)}
    stopped = feed(MedianPruner(PrunerConfig("median", min_trials=3)), curves)
    # Step 100, key order: 0, 1, 2 see < 3 others; 3 sees median(0.71, 0.72, 0.73)=0.72 -> 0.74 goes on;
    # 4 (0.51) < median of 0..3 -> stopped; 5 (0.56) < median -> stopped.
    assert sorted(stopped) == [4, 5]
    assert all(step == 100 for step, _ in stopped.values())
    assert "median" in stopped[4][1] and "step 100" in stopped[4][1]


def test_median_compares_best_so_far_so_one_bad_evaluation_does_not_stop_a_trial():
    good = [(100, 0.80), (200, 0.82), (300, 0.84)]
    dip = [(100, 0.83), (200, 0.60), (300, 0.85)]  # one noisy evaluation at step 200 (latest 0.60 < 0.82)
    curves = {0: good, 1: good, 2: good, 3: dip}
    assert feed(MedianPruner(PrunerConfig("median", min_trials=3)), curves, order="sequential") == {}


def test_median_waits_for_min_trials_and_the_grace_step():
    curves = {0: linear(0.8, 0.0), 1: linear(0.8, 0.0), 2: linear(0.1, 0.0)}
    assert feed(MedianPruner(PrunerConfig("median", min_trials=3)), curves) == {}  # only 2 others
    stopped = feed(MedianPruner(PrunerConfig("median", min_trials=2, grace=300)), curves)
    assert stopped == {2: (300, stopped[2][1])}  # not at steps 100 or 200


def test_median_counts_only_trials_that_reached_the_step():
    # Trial 3 reports step 500 while 0..2 only got to 300: nobody to compare with there, but at
    # its steps 100..300 (reported before) it was compared to trials that had not reached them.
    curves = {0: linear(0.9, 0.0, (100, 200, 300)), 1: linear(0.9, 0.0, (100, 200, 300)),
              2: linear(0.9, 0.0, (100, 200, 300)), 3: [(500, 0.1)]}
    assert feed(MedianPruner(PrunerConfig("median", min_trials=3)), curves, order="sequential") == {}


def test_median_default_grace_is_the_first_reported_step():
    p = MedianPruner(PrunerConfig("median", min_trials=1))
    p.report(0, 50, 0.9)
    assert p.grace == 50
    assert p.report(1, 40, 0.1) is None  # before the grace step
    assert p.report(1, 60, 0.1) is None  # trial 0 has not reached 60
    assert p.report(0, 60, 0.9) is None
    assert p.report(1, 70, 0.1) is None  # nobody at 70 yet
    assert "median" in p.report(2, 60, 0.1)


def test_asha_keeps_the_top_third_at_each_rung():
    # grace 100, eta 3: rungs at 100, 300, 900. Trials run one after the other (one slot).
    finals = {0: 0.60, 1: 0.70, 2: 0.80, 3: 0.50, 4: 0.90, 5: 0.65}
    curves = {t: [(s, v * s / 900) for s in range(100, 1000, 100)] for t, v in finals.items()}
    stopped = feed(AshaPruner(PrunerConfig("asha", grace=100, eta=3, min_trials=1)), curves, order="sequential")
    # Rung 0 values (v/9) in arrival order 0.60, 0.70, 0.80, 0.50, 0.90, 0.65; a trial goes on when >= the
    # 2/3 quantile of the values recorded so far (itself included):
    #   0: [.60] cut .60 ok; 1: [.60,.70] cut .667 ok; 2: [.6,.7,.8] cut .733 ok; 3: .50 < .70 stop;
    #   4: .90 ok; 5: [.6,.7,.8,.5,.9,.65] cut .733 -> .65 stop.
    # Rung 1 (300, values v/3) among 0, 1, 2, 4: 0 ok (alone); 1 ok; 2 ok; 4 ok (the best each time).
    assert sorted(stopped) == [3, 5]
    assert stopped[3][0] == 100 and "rung 0" in stopped[3][1]


def test_asha_min_trials_and_interleaved_reports():
    # Side by side: at rung 0 (step 100) keys 0..5 arrive in key order.
    finals = {0: 0.60, 1: 0.70, 2: 0.80, 3: 0.50, 4: 0.90, 5: 0.65}
    curves = {t: [(s, v * s / 900) for s in range(100, 1000, 100)] for t, v in finals.items()}
    stopped = feed(AshaPruner(PrunerConfig("asha", grace=100, eta=3, min_trials=3)), curves)
    # Rung 0: 0, 1 recorded without a decision (< 3 values); 2 ok; 3 stop; 4 ok; 5 stop.
    # Rung 1 (step 300), arrivals 0, 1, 2, 4 with v/3 = .2, .233, .267, .3: 0, 1 undecided (< 3);
    # 2: cut of [.2,.233,.267] = .244 -> ok; 4: ok. Rung 2 (step 900): 0, 1 undecided; 2: cut of
    # [.6, .7, .8] = .733 -> .8 ok; 4 ok.
    assert sorted(stopped) == [3, 5]


def test_asha_a_report_past_several_rungs_is_recorded_at_each():
    p = AshaPruner(PrunerConfig("asha", grace=10, eta=2, min_trials=5))  # too few values to decide
    for key, score in enumerate([0.9, 0.8, 0.7]):
        assert p.report(key, 40, score) is None  # rungs 10, 20, 40 all crossed at once
    assert p.rungs == {0: [0.9, 0.8, 0.7], 1: [0.9, 0.8, 0.7], 2: [0.9, 0.8, 0.7]}
    assert p.report(0, 79, 0.95) is None and 3 not in p.rungs  # the next rung is at 80


def test_asha_stops_at_the_first_rung_it_fails():
    p = AshaPruner(PrunerConfig("asha", grace=10, eta=2, min_trials=1))
    assert p.report("a", 40, 0.9) is None
    reason = p.report("b", 40, 0.5)
    assert reason and "rung 0" in reason and p.reached["b"] == 1  # not recorded at the later rungs


def test_same_reports_in_the_same_order_give_the_same_decisions():
    curves = {t: [(s, ((t * 37) % 11) / 10 + s / 5000) for s in range(50, 500, 50)] for t in range(12)}
    for kind in ("median", "asha"):
        cfg = PrunerConfig(kind, min_trials=2)
        first, second = feed(make_pruner(cfg), curves), feed(make_pruner(cfg), curves)
        assert first == second and first  # something was pruned, identically


def test_a_retried_attempt_is_a_new_curve_and_stale_steps_are_ignored():
    p = MedianPruner(PrunerConfig("median", min_trials=1))
    assert p.report((0, 1), 100, 0.5) is None
    assert p.report((0, 1), 100, 0.1) is None and p.curves[(0, 1)] == [(100, 0.5)]
    p.report((0, 2), 100, 0.6)  # the retry of trial 0: its own curve
    assert set(p.curves) == {(0, 1), (0, 2)}


def test_no_decision_at_or_after_max_step_but_the_report_is_reference():
    for kind in ("median", "asha"):
        p = make_pruner(PrunerConfig(kind, grace=10, eta=2, min_trials=1, max_step=20))
        p.report(0, 10, 0.9)
        p.report(0, 20, 0.9)
        assert p.report(1, 20, 0.1) is None  # the last step: never judged
        assert p.curves[1] == [(20, 0.1)]
        assert p.report(2, 10, 0.1) is not None  # before it: judged (against trial 0's 0.9 / the rung)


@pytest.mark.parametrize("kw, flag", [({"kind": "hyperband"}, "--pruner"), ({"grace": 0}, "--prune_grace"),
                                      ({"eta": 1.0}, "--prune_eta"), ({"min_trials": 0}, "--prune_min_trials"),
                                      ({"max_step": 0}, "--prune_max_step")])
def test_bad_settings_name_the_flag(kw, flag):
    with pytest.raises(ValueError, match=flag):
        PrunerConfig(**{"kind": "asha", **kw})


def test_a_resume_with_other_pruner_settings_is_refused(tmp_path):
    from autoft.errors import AutoftError
    from autoft.tuner.journal import Journal

    header = {"script": "t.py", "space": [], "popsize": 2, "evaluator": "fulltrail", "tuning_strategy": "random",
              "seed": 1, "options": [], "pruner": PrunerConfig("median").to_json()}
    Journal.create(tmp_path / "journal.jsonl", header)
    Journal.resume(tmp_path / "journal.jsonl", dict(header))  # the same settings resume
    with pytest.raises(AutoftError, match="pruner: journal"):
        Journal.resume(tmp_path / "journal.jsonl", {**header, "pruner": PrunerConfig("asha").to_json()})
    no_pruner = {k: v for k, v in header.items() if k != "pruner"}
    with pytest.raises(AutoftError, match="pruner: journal"):
        Journal.resume(tmp_path / "journal.jsonl", no_pruner)
