"""search.png, the summary table and log_file.txt: integer ticks, nothing clipped, the init line and
PRUNED trials shown as such. Asserted on the figure objects and the text, not on pixels."""

import dataclasses

import pytest

from autoft.search.space import Param, SearchSpace
from autoft.tuner import output
from autoft.tuner.records import TrialRecord

pytest.importorskip("matplotlib")

SPACE = SearchSpace([Param("learning_rate", 5e-4, "float", 1e-4, 5e-3, "log"), Param("blocks", 8, "int", 1, 17),
                     Param("factor", 1.5, "float", 1.0, 3.0)])
NAMES = SPACE.names


def rec(t, status="OK", score=None, popsize=4):
    r = TrialRecord(round=t // popsize, idx=t % popsize, trial=t, point=[0.0], status=status,
                    hparams={"learning_rate": 1e-4 * (1 + t), "blocks": 2 + t % 5, "factor": 1.0 + t / 10},
                    score=score if status == "OK" else None, reason="" if status == "OK" else "crashed: exit code 1",
                    seconds=1.5, log=f"round{t // popsize}/log-{t % popsize}.info",
                    model_dir=f"round{t // popsize}/model-{t % popsize}")
    if status == "PRUNED":
        r.reason, r.last_step, r.last_score = "pruned (asha) at step 100", 100 + t, score
    return r


RECORDS = ([rec(t, score=0.6 + 0.02 * t) for t in range(0, 9)] + [rec(9, "FAILED")]
           + [rec(t, "PRUNED", score=0.55 + 0.01 * t) for t in range(10, 12)])


def tick_values(axis):
    return [t for t in axis.get_majorticklocs() if axis.get_view_interval()[0] <= t <= axis.get_view_interval()[1]]


def test_integer_values_get_integer_ticks():
    fig = output.build_search_figure(NAMES, RECORDS, space=SPACE, title="t")
    score_ax, lr_ax, blocks_ax, factor_ax = fig.axes[:1] + [a for a in fig.axes if a.get_ylabel() in NAMES]
    trials = tick_values(factor_ax.xaxis)  # the shared x axis: trial numbers
    assert trials and all(float(t).is_integer() for t in trials)
    blocks = tick_values(blocks_ax.yaxis)
    assert len(blocks) >= 2 and all(float(t).is_integer() for t in blocks)
    bar = next(a for a in fig.axes if a.get_ylabel() == "round")  # the round colour bar
    rounds = tick_values(bar.yaxis)
    assert rounds and all(float(t).is_integer() for t in rounds)
    assert lr_ax.get_yscale() == "log"


def test_an_int_hparam_with_one_value_still_gets_integer_ticks():
    recs = [dataclasses.replace(r, hparams={**r.hparams, "blocks": 16}) for r in RECORDS]  # HAZero kept blocks 16
    space = SearchSpace([SPACE.params[0], Param("blocks", 16, "int", 1, 17), SPACE.params[2]])  # init 16 too
    fig = output.build_search_figure(NAMES, recs, space=space)
    blocks_ax = next(a for a in fig.axes if a.get_ylabel() == "blocks")
    ticks = tick_values(blocks_ax.yaxis)
    assert ticks and all(float(t).is_integer() for t in ticks)


def test_no_label_is_clipped_even_with_a_long_name_and_wide_ticks():
    space = SearchSpace([Param("a_rather_long_hyperparameter_name", 5e-4, "float", 1e-4, 5e-3),
                         Param("blocks", 8, "int", 1, 17)])
    records = [dataclasses.replace(r, hparams={"a_rather_long_hyperparameter_name": 0.000123456 * (1 + r.trial),
                                               "blocks": r.hparams["blocks"]}) for r in RECORDS]
    for sp, recs in ((SPACE, RECORDS), (space, records)):
        fig = output.build_search_figure(sp.names, recs, space=sp, title="t")
        renderer = fig.canvas.get_renderer()
        fig_box = fig.bbox
        for a in fig.axes:
            box = a.get_tightbbox(renderer)
            assert box.x0 >= 0 and box.x1 <= fig_box.width, (a.get_ylabel(), box)
            assert box.y0 >= 0 and box.y1 <= fig_box.height, (a.get_ylabel(), box)


def test_legend_names_the_init_line_the_pruned_and_the_failed_trials():
    fig = output.build_search_figure(NAMES, RECORDS, space=SPACE)
    texts = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert "init_value (hparam panels)" in texts
    assert "pruned (2): score when stopped" in texts
    assert "failed (1)" in texts
    assert any(t.startswith("best 0.76") for t in texts)


def test_pruned_trials_are_hollow_markers_at_their_score_when_stopped():
    fig = output.build_search_figure(NAMES, RECORDS, space=SPACE)
    ax = fig.axes[0]
    pruned = next(c for c in ax.collections if c.get_label().startswith("pruned"))
    assert pruned.get_offsets().tolist() == [[10, 0.65], [11, pytest.approx(0.66)]]
    assert len(pruned.get_facecolors()) == 0  # hollow
    low, high = ax.get_ylim()
    assert low < 0.65 and high > 0.76


def test_only_pruned_and_failed_trials_still_draw(tmp_path):
    recs = [rec(0, "PRUNED", score=0.5), rec(1, "FAILED")]
    output.plot_search(tmp_path / "search.png", NAMES, recs, space=SPACE, title="none OK")
    assert (tmp_path / "search.png").read_bytes()[:4] == b"\x89PNG"


def test_summary_counts_and_lists_pruned_trials():
    text = output.summary_table(NAMES, RECORDS)
    assert text.splitlines()[0] == "12 trials: 9 OK, 1 FAILED, 2 PRUNED. Top 9 by score:"
    assert "round 2 trial 2: PRUNED at step 110, score 0.65  learning_rate=0.0011 blocks=2 factor=2" in text
    assert "Failed trials:\n  round 2 trial 1: crashed: exit code 1 (log: round2/log-1.info)" in text
    no_pruning = output.summary_table(NAMES, RECORDS[:10])
    assert no_pruning.startswith("10 trials: 9 OK, 1 FAILED. Top") and "Pruned" not in no_pruning


def test_log_file_keeps_paddlehubs_table_and_adds_the_pruned_trials_after_it(tmp_path):
    path = tmp_path / "log_file.txt"
    output.write_log_file(path, NAMES, RECORDS, output.best_record(RECORDS))
    lines = path.read_text().splitlines()
    table = lines.index("learning_rate\tblocks\tfactor\tsaved_params_dir")
    assert len(lines[table + 1:table + 13]) == 12 and lines[table + 13] == ""
    assert lines[table + 14].startswith("Pruned trials (2,")
    assert lines[table + 15:] == ["round2/model-2\tPRUNED at step 110, score 0.65",
                                  "round2/model-3\tPRUNED at step 111, score 0.66"]
    output.write_log_file(path, NAMES, RECORDS[:10], output.best_record(RECORDS))
    assert path.read_text().splitlines()[-1] == "0.001\t6\t1.9\tround2/model-1"  # PaddleHub's layout unchanged
