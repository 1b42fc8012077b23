"""Everything the search leaves in ``output_dir`` besides the trials' own files, and the console summary.

PaddleHub's files (``log_file.txt``, ``best_model/``, ``visualization/``) plus ``trials.csv``,
``best_hparams.yaml`` and ``search.png``. All are rebuilt from the journal's trial records, so
a resumed search produces the same files as an uninterrupted one. Files are replaced atomically.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import os
import threading
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import yaml

from autoft import atomic
from autoft.tuner.records import OK, PRUNED, TrialRecord
from autoft.visualdl import ScalarLog

Record = TrialRecord


def best_record(records: Sequence[Record]) -> Optional[Record]:
    """The OK trial with the highest score (earliest trial on ties), or None if none succeeded."""
    ok = [r for r in records if r.status == OK]
    if not ok:
        return None
    return min(ok, key=lambda r: (-r.score, r.trial))


def fmt_value(v: Any) -> str:
    """How an hparam value is shown: PaddleHub's str() for the trial command, compact floats here."""
    return f"{v:.6g}" if isinstance(v, float) else str(v)


def model_kept(r: Record) -> str:
    """trials.csv's model_kept: ``none`` (the trial saved nothing), ``deleted`` (by --keep_models) or ``yes``."""
    if r.saved is False:
        return "none"
    return "deleted" if r.model_deleted is not None else "yes"


TRIALS_CSV_HEADER = ["round", "trial", "score", "status", "seconds", "reason", "model_path", "log", "model_dir",
                     "model_kept"]


def trials_csv_header(names: Sequence[str]) -> list:
    """trials.csv's columns: round, trial, every hparam, score, status, seconds, reason,
    model_path (the donor), log, model_dir (paths relative to the output dir), model_kept."""
    return [*TRIALS_CSV_HEADER[:2], *names, *TRIALS_CSV_HEADER[2:]]


def trials_csv_row(names: Sequence[str], r: Record) -> list:
    return [r.round, r.idx, *[r.hparams[n] for n in names], "" if r.score is None else repr(r.score), r.status,
            f"{r.seconds:.2f}", r.reason, r.model_path or "", r.log, r.model_dir, model_kept(r)]


def _csv_text(rows) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    return buf.getvalue()


def write_trials_csv(path: Path, names: Sequence[str], records: Sequence[Record]) -> None:
    """trials.csv from all ``records``, in trial order (replaced atomically)."""
    rows = [trials_csv_row(names, r) for r in sorted(records, key=lambda r: r.trial)]
    atomic.write_text(path, _csv_text([trials_csv_header(names), *rows]))


def append_trials_csv(path: Path, names: Sequence[str], record: Record) -> None:
    """Append one row to trials.csv (in one write: a kill leaves whole rows); the cost of a
    finished trial does not grow with the number of trials before it."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        data = _csv_text([trials_csv_row(names, record)]).encode("utf-8")
        if os.fstat(fd).st_size == 0:
            data = _csv_text([trials_csv_header(names)]).encode("utf-8") + data
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    except OSError as exc:
        exc.filename = exc.filename or str(path)
        raise
    finally:
        os.close(fd)


def write_log_file(path: Path, names: Sequence[str], records: Sequence[Record], best: Optional[Record]) -> None:
    """PaddleHub's log_file.txt: the best hyper-parameters and score, then one row per trial; after
    that table (left as PaddleHub wrote it), one line per PRUNED trial when --pruner stopped any."""
    lines = ["The final best hyperparameters:"]
    if best is None:
        lines += ["(none: no trial succeeded)", "The final best eval score is None."]
    else:
        lines += [f"{n}\t:\t{best.hparams[n]}" for n in names]
        lines.append(f"The final best eval score is {best.score}.")
        lines.append("The final best model parameters are saved as ./best_model .")
    lines.append("\t".join([*names, "saved_params_dir"]))
    ordered = sorted(records, key=lambda r: r.trial)
    for r in ordered:
        lines.append("\t".join([*[str(r.hparams[n]) for n in names], r.model_dir]))
    pruned = [r for r in ordered if r.status == PRUNED]
    if pruned:
        lines += ["", f"Pruned trials ({len(pruned)}, stopped early; score = best intermediate score when stopped):"]
        lines += [f"{r.model_dir}\t{pruned_line(r)}" for r in pruned]
    atomic.write_text(path, "\n".join(lines) + "\n")


def write_best_hparams(path: Path, best: Optional[Record], best_model: bool = False) -> None:
    """best_hparams.yaml: the winning values plus where they came from: ``model_dir`` is
    ``best_model`` (the copy, when it was made), ``trial_model_dir`` the trial's own dir
    (relative to the output dir)."""
    if best is None:
        data: Dict[str, Any] = {"best": None, "note": "no trial succeeded; see trials.csv"}
    else:
        data = {"hparams": {k: v for k, v in best.hparams.items()}, "score": best.score,
                "round": best.round, "trial": best.idx, "model_dir": "best_model" if best_model else None,
                "trial_model_dir": best.model_dir}
    atomic.write_text(path, yaml.safe_dump(data, sort_keys=False))


def copy_best_model(best: Optional[Record], output_dir: Path, root: Optional[Path] = None) -> str:
    """Copy the winning trial's model dir to ``output_dir/best_model``; returns a one-line note.
    ``root``: what the record's relative paths are relative to (default ``output_dir``)."""
    dst = Path(output_dir) / "best_model"
    if best is None:
        return "No best model: no trial succeeded."
    src = Path(root or output_dir) / best.model_dir
    if not src.exists() and best.note:  # e.g. it ran on another node without a shared filesystem
        return f"No best model (unavailable): the best trial (round {best.round}, trial {best.idx}): {best.note}."
    if not src.is_dir() or not any(src.iterdir()):
        return (f"No best model: the best trial (round {best.round}, trial {best.idx}) saved nothing "
                f"to {src}.")
    atomic.copy_dir(src, dst)
    return f"The final best model parameters are saved as {dst} ."


class VisualDLLog:
    """VisualDL scalars with PaddleHub's tags (step = round, from 1), appended one round at a time.

    ``open`` empties ``vis_dir``: a resumed search replays its journaled rounds through
    ``add_round``, so every round is written exactly once (no duplicate points after --resume)
    and the files equal those of an uninterrupted search. Writers stay open between rounds and
    are flushed after each, so ``visualdl --logdir`` shows a running search.
    """

    def __init__(self, vis_dir: Path, names: Sequence[str], popsize: int):
        self.vis_dir = Path(vis_dir)
        self.names = list(names)
        self.popsize = popsize
        self.note: Optional[str] = None  # why nothing is written (visualdl missing)
        self._main: Optional[ScalarLog] = None
        self._pops: List[ScalarLog] = []
        self._best: Optional[Record] = None

    def open(self) -> VisualDLLog:
        """Start an empty log (sets ``note`` instead if visualdl is not installed)."""
        main = ScalarLog.open(self.vis_dir, fresh=True)
        if not main.enabled:
            self.note = f"visualization/ skipped: {main.note}."
            return self
        self._main = main
        self._pops = [main.child(f"pop_{i}") for i in range(self.popsize)]
        return self

    def add_round(self, k: int, round_records: Sequence[Record]) -> None:
        """Write round ``k``'s scalars (its trials' values and scores, the best so far) and flush."""
        if self._main is None:
            return
        this = sorted(round_records, key=lambda r: r.idx)
        cand = best_record(this)
        if cand is not None and (self._best is None or cand.score > self._best.score):
            self._best = cand
        step = k + 1
        if self._best is not None:
            self._main.add_many(_numeric(self._best.hparams, self.names, "hyperparameter_tuning/"), step)
            self._main.add("hyperparameter_tuning/best_eval_value", self._best.score, step)
        for r in this:
            # PaddleHub plotted 1 - reward, i.e. 0 for a failed trial.
            values = _numeric(r.hparams, self.names, "population_transformation/")
            values["population_transformation/eval_value"] = r.score if r.score is not None else 0.0
            self._pops[r.idx].add_many(values, step)
        for w in (self._main, *self._pops):
            w.flush()

    def close(self) -> None:
        """Flush and close the writers (safe to call twice)."""
        for w in (self._main, *self._pops):
            if w is not None:
                w.close()
        self._main, self._pops = None, []


def _numeric(hparams: Dict[str, Any], names: Sequence[str], prefix: str) -> Dict[str, float]:
    """The hyper-parameters VisualDL can plot (a string ``choice`` value is not a scalar)."""
    return {f"{prefix}{n}": float(hparams[n]) for n in names
            if isinstance(hparams[n], (int, float)) and not isinstance(hparams[n], bool)}


def write_visualdl(vis_dir: Path, names: Sequence[str], records: Sequence[Record], popsize: int) -> Optional[str]:
    """Rebuild ``vis_dir`` from all ``records`` at once; returns a note if VisualDL is missing."""
    log = VisualDLLog(vis_dir, names, popsize).open()
    try:
        for k in sorted({r.round for r in records}):
            log.add_round(k, [r for r in records if r.round == k])
    finally:
        log.close()
    return log.note


def pruned_score(r: Record) -> Optional[float]:
    """A PRUNED trial's best intermediate score when it was stopped (None for other trials)."""
    return r.last_score if r.status == PRUNED else None


def build_search_figure(names: Sequence[str], records: Sequence[Record], space=None, title: str = ""):
    """The search.png figure (a matplotlib Figure, drawn on an Agg canvas): see :func:`plot_search`."""
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.ticker import MaxNLocator

    recs = sorted(records, key=lambda r: r.trial)
    best = best_record(recs)
    ok = [r for r in recs if r.status == OK]
    pruned = [r for r in recs if pruned_score(r) is not None]
    bad = [r for r in recs if r.status != OK and pruned_score(r) is None]
    n_rounds = max((r.round for r in recs), default=0) + 1
    height = 2.6 + 1.9 * len(names)
    fig = Figure(figsize=(9, height))
    FigureCanvasAgg(fig)
    # Margins in inches -> figure fractions; the left one is widened below if a label needs it.
    fig.subplots_adjust(left=0.09, right=0.99, top=1 - 0.45 / height, bottom=0.55 / height, hspace=0.12)
    axes = fig.subplots(1 + len(names), 1, sharex=True, squeeze=False)[:, 0]
    ax = axes[0]
    round_kw = dict(cmap=matplotlib.colormaps["viridis"], vmin=0, vmax=max(1, n_rounds - 1))
    shown = [(r.trial, r.score, r.round) for r in ok] + [(r.trial, pruned_score(r), r.round) for r in pruned]
    if ok:
        sc = ax.scatter([r.trial for r in ok], [r.score for r in ok], c=[r.round for r in ok], s=28,
                        zorder=3, **round_kw)
        _integer_colorbar(fig, sc, ax, "round")
        xs, ys, cur = [], [], None
        for r in recs:
            if r.status == OK and (cur is None or r.score > cur):
                cur = r.score
            if cur is not None:
                xs.append(r.trial)
                ys.append(cur)
        ax.step(xs, ys, where="post", color="black", lw=1, label="best so far")
    if pruned:  # hollow: where they were when stopped, not a final score
        sc = ax.scatter([r.trial for r in pruned], [pruned_score(r) for r in pruned], s=28, zorder=3,
                        facecolors="none", edgecolors=matplotlib.colormaps["viridis"](
                            [r.round / round_kw["vmax"] for r in pruned]), linewidths=1.2,
                        label=f"pruned ({len(pruned)}): score when stopped")
        if not ok:
            _integer_colorbar(fig, ax.scatter([], [], c=[], **round_kw), ax, "round")
    lo, hi = (min(s for _, s, _ in shown), max(s for _, s, _ in shown)) if shown else (0.0, 1.0)
    pad = 0.05 * (hi - lo or 1.0)
    floor = lo - 3 * pad
    ax.set_ylim(floor - pad, hi + 2 * pad)
    if bad:  # failures drawn on the floor of the axis, not at score 0 (that would flatten the plot)
        ax.scatter([r.trial for r in bad], [floor] * len(bad), marker="x", color="red", s=36, zorder=3,
                   label=f"failed ({len(bad)})")
    ax.set_ylabel("score")
    for a in axes:
        for k in range(1, n_rounds):
            a.axvline(min(r.trial for r in recs if r.round == k) - 0.5, color="0.85", lw=0.8, zorder=0)
    for i, n in enumerate(names):
        _hparam_panel(fig, axes[i + 1], n, space.params[i] if space is not None else None, ok, pruned, bad)
    if best is not None:
        axes[0].scatter([best.trial], [best.score], marker="*", s=260, color="gold", edgecolor="black",
                        zorder=4, label=f"best {best.score:.4g}")
        for i, n in enumerate(names):
            axes[i + 1].scatter([best.trial], [best.hparams[n]], marker="*", s=220, color="gold",
                                edgecolor="black", zorder=4)
    handles, labels = axes[0].get_legend_handles_labels()
    if space is not None and names:
        handles.append(Line2D([], [], color="0.6", ls="--", lw=0.8))
        labels.append("init_value (hparam panels)")
    axes[0].legend(handles, labels, loc="best", fontsize=8, framealpha=0.8)
    axes[-1].xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))  # trial numbers
    axes[-1].set_xlabel("trial (global number; grey lines separate rounds)")
    if title:
        axes[0].set_title(title, fontsize=10)
    _fit_margins(fig)
    return fig


def _integer_colorbar(fig, mappable, ax, label: str) -> None:
    from matplotlib.ticker import MaxNLocator

    bar = fig.colorbar(mappable, ax=ax, pad=0.01, ticks=MaxNLocator(integer=True, min_n_ticks=1))
    bar.set_label(label)


def _hparam_panel(fig, a, name: str, param, ok, pruned, bad) -> None:
    """One hyper-parameter's panel: its value per trial coloured by score, init_value dashed."""
    from matplotlib.ticker import MaxNLocator

    if ok:
        sc = a.scatter([r.trial for r in ok], [r.hparams[name] for r in ok], c=[r.score for r in ok],
                       cmap="plasma", s=22, zorder=3)
        fig.colorbar(sc, ax=a, pad=0.01).set_label("score")
    if pruned:
        a.scatter([r.trial for r in pruned], [r.hparams[name] for r in pruned], facecolors="none",
                  edgecolors="0.45", s=22, zorder=3)
    if bad:
        a.scatter([r.trial for r in bad], [r.hparams[name] for r in bad], marker="x", color="0.6", s=22)
    if param is not None:
        a.axhline(param.init_value, color="0.6", ls="--", lw=0.8)
        if getattr(param, "scale", "linear") == "log":
            a.set_yscale("log")
        elif param.type == "int":
            a.yaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
    a.set_ylabel(name)


def _fit_margins(fig, pad_inches: float = 0.05) -> None:
    """Widen the side margins until every axis' labels (y labels, tick labels, colour bars) lie inside
    the figure: a long hparam name or wide tick labels would otherwise be clipped at the edge."""
    renderer = fig.canvas.get_renderer()
    boxes = [a.get_tightbbox(renderer) for a in fig.axes]
    pad = pad_inches * fig.dpi
    over_left = pad - min(b.x0 for b in boxes)
    over_right = max(b.x1 for b in boxes) - (fig.bbox.width - pad)
    left, right = fig.subplotpars.left, fig.subplotpars.right
    if over_left > 0:
        left += over_left / fig.bbox.width
    if over_right > 0:
        right -= over_right / fig.bbox.width
    if (left, right) != (fig.subplotpars.left, fig.subplotpars.right):
        fig.subplots_adjust(left=left, right=right)


def plot_search(path: Path, names: Sequence[str], records: Sequence[Record], space=None, title: str = "") -> None:
    """search.png: score per trial (coloured by round, best-so-far line, pruned trials hollow at the score
    they had when stopped, failures as red x) and one panel per hyper-parameter (value per trial,
    coloured by score, init_value dashed), the best trial starred; integer axes get integer ticks.

    Called after every round, so it is kept cheap: matplotlib's object API (no pyplot state) and
    fixed margins instead of tight_layout (which lays the figure out twice; ~2x the cost).
    """
    fig = build_search_figure(names, records, space=space, title=title)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    atomic.write_bytes(path, buf.getvalue())


class LiveOutputs:
    """The files a user watches while a search runs, refreshed as it goes.

    ``trial_finished`` appends the trial's row to trials.csv (``rewrite`` replaces the whole file:
    on resume, after --keep_models deletions, at the end);
    ``round_finished`` appends the round to the VisualDL log and redraws search.png in a
    background thread, so the next round's trials start without waiting for matplotlib (the
    plot only reads a snapshot of the records; one drawing at a time, a round that ends while
    one is drawn skips its redraw). ``close`` waits for it.
    """

    def __init__(self, out: Path, names: Sequence[str], popsize: int, space=None, title: str = ""):
        self.out = Path(out)
        self.names = list(names)
        self.space = space
        self.title = title
        self.vdl = VisualDLLog(self.out / "visualization", names, popsize)
        self._opened = False
        self._plotter: Optional[threading.Thread] = None
        self.plot_error: Optional[str] = None

    def trial_finished(self, record: Record) -> None:
        """Append a finished trial's row to trials.csv."""
        append_trials_csv(self.out / "trials.csv", self.names, record)

    def rewrite(self, records: Sequence[Record]) -> None:
        """Rewrite trials.csv from all finished ``records``, in trial order."""
        write_trials_csv(self.out / "trials.csv", self.names, records)

    def round_finished(self, k: int, round_records: Sequence[Record], records: Sequence[Record],
                       plot: bool = True) -> None:
        """Append round ``k`` to the VisualDL log; redraw search.png from ``records`` when ``plot``."""
        if not self._opened:
            self.vdl.open()
            self._opened = True
        self.vdl.add_round(k, round_records)
        if plot:
            if self._plotter is not None and self._plotter.is_alive():
                # Still drawing an earlier round: skip this redraw rather than hold up the search
                # (with short trials the rounds come faster than matplotlib); the next one catches up.
                return
            self.wait()
            snapshot = [dataclasses.replace(r) for r in records]
            n_ok = sum(r.status == OK for r in snapshot)
            title = f"{self.title}: round {k}, {len(snapshot)} trials ({n_ok} OK), running"
            self._plotter = threading.Thread(target=self._plot, args=(snapshot, title), name="search-plot",
                                             daemon=True)
            self._plotter.start()

    def _plot(self, records: Sequence[Record], title: str) -> None:
        try:
            plot_search(self.out / "search.png", self.names, records, space=self.space, title=title)
        except Exception as exc:  # a plot must never stop a search; the final plot runs in the main thread
            self.plot_error = f"search.png not refreshed: {type(exc).__name__}: {exc}"

    def wait(self) -> None:
        """Wait for a running redraw of search.png."""
        if self._plotter is not None:
            self._plotter.join()
            self._plotter = None

    def close(self) -> Optional[str]:
        """Wait for the plot, close the VisualDL writers; returns a note if VisualDL is missing."""
        self.wait()
        self.vdl.close()
        return self.vdl.note


def summary_table(names: Sequence[str], records: Sequence[Record], top: int = 10) -> str:
    """The final console table: the best ``top`` trials, then the pruned ones (where they were
    stopped) and the failed ones with their reasons."""
    ok = sorted((r for r in records if r.status == OK), key=lambda r: (-r.score, r.trial))
    pruned = sorted((r for r in records if r.status == PRUNED), key=lambda r: r.trial)
    bad = sorted((r for r in records if r.status not in (OK, PRUNED)), key=lambda r: r.trial)
    head = ["rank", "round", "trial", *names, "score", "seconds"]
    rows = [[str(i + 1), str(r.round), str(r.idx), *[fmt_value(r.hparams[n]) for n in names],
             f"{r.score:.6g}", f"{r.seconds:.1f}"] for i, r in enumerate(ok[:top])]
    widths = [max(len(h), *(len(row[j]) for row in rows)) if rows else len(h) for j, h in enumerate(head)]
    counts = f"{len(ok)} OK, {len(bad)} FAILED" + (f", {len(pruned)} PRUNED" if pruned else "")
    out = [f"{len(records)} trials: {counts}. Top {min(top, len(ok))} by score:"]
    out.append("  ".join(h.rjust(w) for h, w in zip(head, widths)))
    out += ["  ".join(c.rjust(w) for c, w in zip(row, widths)) for row in rows]
    out += _listed("Pruned trials (stopped early; score = best intermediate score when stopped):", pruned, top,
                   lambda r: f"{pruned_line(r)}  {hparams_text(r, names)}")
    out += _listed("Failed trials:", bad, top, lambda r: f"{r.reason} (log: {r.log})")
    return "\n".join(out)


def hparams_text(r: Record, names: Sequence[str]) -> str:
    """``name=value ...`` of a trial, values as the summary shows them."""
    return " ".join(f"{n}={fmt_value(r.hparams[n])}" for n in names)


def pruned_line(r: Record) -> str:
    """``PRUNED at step S, score X`` for a pruned trial (its best intermediate score when stopped)."""
    score = pruned_score(r)
    return f"PRUNED at step {r.last_step}, score " + ("-" if score is None else f"{score:.6g}")


def _listed(title: str, records: Sequence[Record], top: int, describe) -> List[str]:
    if not records:
        return []
    out = [title] + [f"  round {r.round} trial {r.idx}: {describe(r)}" for r in records[:top]]
    if len(records) > top:
        out.append(f"  ... and {len(records) - top} more (see trials.csv)")
    return out
