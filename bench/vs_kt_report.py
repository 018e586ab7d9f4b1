"""Tables and the plot of ``bench/vs_keras_tuner.py``, from the runs it left in its out folder.

Only trials that finished within a run's budget count. A run's best validation accuracy at a
time is the best value among its COMPLETE trials finished by then: for our tool, pruned trials
do not count (Optuna does not rank them, and no model of theirs is logged); for Keras Tuner
every scored trial counts, Hyperband's short low-epoch trials included (``get_best_models``
ranks them too).
"""

from __future__ import annotations

import csv
import json
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: Extra margins shown beside the headline one, for how the verdict depends on the target.
EXTRA_MARGINS = (0.02, 0.05)


@dataclass
class Run:
    dir: Path
    meta: dict[str, Any]
    events: list[dict[str, Any]] = field(default_factory=list)

    @property
    def config(self) -> str:
        return str(self.meta["config"])

    @property
    def side(self) -> str:
        return str(self.meta["side"])

    @property
    def seed(self) -> int:
        return int(self.meta["seed"])

    @property
    def budget(self) -> float:
        return float(self.meta["budget_s"])

    @property
    def key(self) -> str:
        return f"{self.config}/seed{self.seed}"

    def finished(self) -> list[dict[str, Any]]:
        """Trials finished within the budget, in time order."""
        return sorted((e for e in self.events if e["t"] <= self.budget), key=lambda e: e["t"])

    def scored(self) -> list[dict[str, Any]]:
        return [
            e for e in self.finished() if e["state"] == "COMPLETE" and e.get("value") is not None
        ]

    def n_finished(self) -> int:
        return len(self.finished())

    def counts(self) -> dict[str, int]:
        out = {"COMPLETE": 0, "PRUNED": 0, "FAIL": 0}
        for e in self.finished():
            state = e["state"] if e["state"] in out else "FAIL"
            out[state] += 1
        return out

    def best_value(self) -> float | None:
        values = [float(e["value"]) for e in self.scored()]
        return max(values) if values else None

    def winner(self) -> dict[str, Any] | None:
        best: dict[str, Any] | None = None
        for e in self.scored():  # earliest wins a tie
            if best is None or float(e["value"]) > float(best["value"]):
                best = e
        return best

    def steps(self) -> list[tuple[float, float]]:
        """(time, best so far) at every improvement."""
        out: list[tuple[float, float]] = []
        for e in self.scored():
            v = float(e["value"])
            if not out or v > out[-1][1]:
                out.append((float(e["t"]), v))
        return out

    def best_at(self, t: float) -> float | None:
        best = None
        for when, v in self.steps():
            if when <= t:
                best = v
        return best

    def time_to(self, target: float) -> float | None:
        for when, v in self.steps():
            if v >= target - 1e-12:
                return when
        return None

    def first_result(self) -> float | None:
        scored = self.scored()
        return float(scored[0]["t"]) if scored else None


#: Re-scoring a winner's restored weights on the validation split must give its recorded best
#: value; 0.01 allows for nondeterministic float sums on a couple of borderline images.
VAL_CHECK_TOLERANCE = 0.01


def load_run(run_dir: Path) -> Run:
    meta = json.loads((run_dir / "run.json").read_text("utf-8"))
    events = []
    trials = run_dir / "trials.jsonl"
    if trials.exists():
        events = [json.loads(ln) for ln in trials.read_text("utf-8").splitlines() if ln.strip()]
    return Run(run_dir, meta, events)


def load_runs(out: Path) -> list[Run]:
    return [load_run(p.parent) for p in sorted((out / "runs").glob("*/seed*/run.json"))]


# --- aggregation ------------------------------------------------------------------------------


def _median(xs: list[float]) -> float | None:
    return statistics.median(xs) if xs else None


def _fmt(x: float | None, digits: int = 3) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def _range(xs: list[float], digits: int = 3) -> str:
    if not xs:
        return "-"
    med = statistics.median(xs)
    if len(xs) == 1:
        return f"{med:.{digits}f}"
    return f"{med:.{digits}f} [{min(xs):.{digits}f}-{max(xs):.{digits}f}]"


def by_config(runs: list[Run]) -> dict[str, list[Run]]:
    out: dict[str, list[Run]] = {}
    for r in runs:
        out.setdefault(r.config, []).append(r)
    return out


def time_to_target(group: list[Run], target: float) -> tuple[float, int]:
    """Median time to ``target`` over seeds (a run that never gets there counts as its budget)
    and how many runs got there."""
    times = []
    reached = 0
    for r in group:
        t = r.time_to(target)
        reached += t is not None
        times.append(t if t is not None else r.budget)
    return statistics.median(times), reached


def headline(
    groups: dict[str, list[Run]], target: float, our_default: str
) -> dict[str, Any] | None:
    kt = {c: time_to_target(g, target) for c, g in groups.items() if g[0].side == "kt"}
    ours = {c: time_to_target(g, target) for c, g in groups.items() if g[0].side == "ours"}
    if not kt or not ours:
        return None
    best_kt = min(kt, key=lambda c: (kt[c][0], -kt[c][1]))
    best_ours = min(ours, key=lambda c: (ours[c][0], -ours[c][1]))
    default = our_default if our_default in ours else best_ours
    kt_time = kt[best_kt][0]
    return {
        "target": target,
        "best_kt": best_kt,
        "kt_time": kt_time,
        "kt_reached": kt[best_kt][1],
        "default": default,
        "default_time": ours[default][0],
        "default_reached": ours[default][1],
        "default_ratio": ours[default][0] / kt_time if kt_time > 0 else None,
        "best_ours": best_ours,
        "best_ours_time": ours[best_ours][0],
        "best_ours_reached": ours[best_ours][1],
        "best_ours_ratio": ours[best_ours][0] / kt_time if kt_time > 0 else None,
        "n_seeds": len(groups[best_kt]),
    }


# --- outputs ----------------------------------------------------------------------------------


def write_csvs(out: Path, runs: list[Run], tests: dict[str, Any], target: float) -> None:
    with (out / "timeseries.csv").open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["config", "side", "seed", "t_s", "trial_ref", "state", "value", "best_so_far"])
        for r in runs:
            best = None
            for e in r.finished():
                if e["state"] == "COMPLETE" and e.get("value") is not None:
                    best = max(best or 0.0, float(e["value"]))
                w.writerow(
                    [
                        r.config,
                        r.side,
                        r.seed,
                        f"{e['t']:.2f}",
                        e.get("ref", ""),
                        e["state"],
                        "" if e.get("value") is None else f"{float(e['value']):.5f}",
                        "" if best is None else f"{best:.5f}",
                    ]
                )
    with (out / "runs.csv").open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(
            ["config", "side", "seed", "budget_s", "best_val", "time_to_target_s", "first_result_s",
             "complete", "pruned", "failed", "winner_ref", "winner_test_acc", "returncode",
             "load_before_1m", "load_after_1m"]
        )  # fmt: skip
        for r in runs:
            c = r.counts()
            win = r.winner()
            test = tests.get(r.key, {}).get("test_accuracy")
            ttt = r.time_to(target)
            w.writerow(
                [r.config, r.side, r.seed, r.budget, _fmt(r.best_value(), 5),
                 _fmt(ttt, 1), _fmt(r.first_result(), 1), c["COMPLETE"], c["PRUNED"], c["FAIL"],
                 "" if win is None else win.get("ref", ""), _fmt(test, 5),
                 r.meta.get("returncode"), r.meta["load_before"][0], r.meta["load_after"][0]]
            )  # fmt: skip


def plot(out: Path, groups: dict[str, list[Run]], labels: dict[str, str], target: float) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    budget = max(r.budget for g in groups.values() for r in g)
    grid = np.linspace(0, budget, 400)
    fig, ax = plt.subplots(figsize=(13, 6))
    # Two palettes that share no colour: ours cool, Keras Tuner warm (and dashed).
    ours_colors = iter(["#1f77b4", "#2ca02c", "#9467bd", "#17becf", "#7f7f7f", "#bcbd22",
                        "#393b79", "#637939", "#5254a3", "#6b6ecf"])  # fmt: skip
    kt_colors = iter(["#d62728", "#ff7f0e", "#8c564b", "#e377c2", "#ad494a"])
    for config, group in groups.items():
        side = group[0].side
        color = next(kt_colors if side == "kt" else ours_colors)
        curves = np.array(
            [[np.nan if (b := r.best_at(t)) is None else b for t in grid] for r in group]
        )
        have_any = ~np.isnan(curves).all(axis=0)
        filled = np.where(np.isnan(curves), 0.0, curves)
        count = np.maximum((~np.isnan(curves)).sum(axis=0), 1)
        # The median over the seeds that have a result by then (all of them, once they do).
        median = np.full(len(grid), np.nan)
        for i in np.flatnonzero(have_any):
            median[i] = float(np.median(curves[~np.isnan(curves[:, i]), i]))
        lo = np.where(have_any, np.where(np.isnan(curves), np.inf, filled).min(0), np.nan)
        hi = np.where(have_any, np.where(np.isnan(curves), -np.inf, filled).max(0), np.nan)
        partial = have_any & (count < len(group))
        style = "--" if side == "kt" else "-"
        label = f"{labels[config]} (n={len(group)})"
        ax.plot(grid, np.where(partial, np.nan, median), style, color=color, lw=2, label=label)
        ax.plot(grid, np.where(partial, median, np.nan), style, color=color, lw=1, alpha=0.6)
        if len(group) > 1:
            ax.fill_between(grid, lo, hi, color=color, alpha=0.08, lw=0)
    ax.axhline(target, color="black", lw=0.8, ls=":", label=f"target {target:.3f}")
    ax.set_xlabel("wall time since the run's process started (s)")
    ax.set_ylabel("best validation accuracy so far")
    ax.set_title(
        "Best validation accuracy vs wall time: median over seeds (thin: not every seed has a "
        "result yet), band = min-max",
        fontsize=10,
    )
    ax.set_xlim(0, budget)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.tight_layout()
    path = out / "best_val_vs_time.png"
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return path


def _headline_lines(h: dict[str, Any] | None, labels: dict[str, str], margin: float) -> list[str]:
    if h is None:
        return ["(no headline: runs of both sides are needed)"]
    n = h["n_seeds"]

    def reached(k: int) -> str:
        return f"{k}/{n} seeds reached it" + ("" if k == n else "; the others count as budget")

    ratio = h["default_ratio"]
    verdict = "-" if ratio is None else ("meets" if ratio <= 0.5 else "misses")
    # Keras Tuner's time is censored at the budget when it never got there: its real time is
    # longer, so the ratio measured is an upper bound on the real one.
    bound = "<= " if h["kt_reached"] < n else ""
    lines = [
        f"Target: validation accuracy >= {h['target']:.4f} (best of any run - {margin:.2f}).",
        "",
        f"* Best Keras Tuner configuration: **{labels[h['best_kt']]}**, median "
        f"{h['kt_time']:.0f} s ({reached(h['kt_reached'])}).",
        f"* Our default (`tune run`: {labels[h['default']]}): median {h['default_time']:.0f} s "
        f"({reached(h['default_reached'])}). **Ratio {bound}{_fmt(ratio, 2)}** "
        f"(goal <= 0.5: {verdict} it{' as measured' if bound and verdict == 'misses' else ''}).",
        f"* Our fastest configuration here ({labels[h['best_ours']]}, picked after the fact): "
        f"median {h['best_ours_time']:.0f} s ({reached(h['best_ours_reached'])}), ratio "
        f"{bound}{_fmt(h['best_ours_ratio'], 2)}.",
    ]
    if h["kt_reached"] == 0:
        lines.append(
            "* No Keras Tuner run reached the target within its budget: its time counts as the "
            "budget, less than it would really need, so the real ratio is lower than shown."
        )
    return lines


def _match_kt_lines(
    groups: dict[str, list[Run]], labels: dict[str, str], our_default: str
) -> list[str]:
    """Time to match the best validation accuracy any Keras Tuner run reached: a target every
    Keras Tuner configuration can be timed on, whatever the best run of ours found."""
    kt_best = max(
        (v for g in groups.values() if g[0].side == "kt" for r in g if (v := r.best_value())),
        default=None,
    )
    h = None if kt_best is None else headline(groups, kt_best, our_default)
    if h is None:
        return []
    return [
        "## Matching Keras Tuner's best",
        "",
        f"Target: validation accuracy >= {kt_best:.4f}, the best any Keras Tuner run reached.",
        "",
        f"* Best Keras Tuner configuration: {labels[h['best_kt']]}, median {h['kt_time']:.0f} s "
        f"({h['kt_reached']}/{h['n_seeds']} seeds reached it).",
        f"* Our default: median {h['default_time']:.0f} s ({h['default_reached']}/"
        f"{len(groups[h['default']])} seeds reached it), **ratio {_fmt(h['default_ratio'], 2)}**.",
        "",
    ]


def write_outputs(
    out: Path, runs: list[Run], settings: dict[str, Any], *, margin: float, our_default: str
) -> str:
    if not runs:
        return "no runs yet"
    tests_file = out / "test_accuracy.json"
    tests: dict[str, Any] = json.loads(tests_file.read_text("utf-8")) if tests_file.exists() else {}
    groups = by_config(runs)
    order = [c for c in settings["ctx"]["configs"] if c in groups]
    groups = {c: groups[c] for c in order}
    labels = {c: g[0].meta.get("label", c) for c, g in groups.items()}
    best_any = max((v for r in runs if (v := r.best_value()) is not None), default=None)
    if best_any is None:
        return "no run finished a trial within its budget"
    target = best_any - margin
    write_csvs(out, runs, tests, target)
    plot_path = plot(out, groups, labels, target)

    ctx, machine = settings["ctx"], settings["machine"]
    lines = [
        "# This tool vs Keras Tuner: same space, data, model code and clock",
        "",
        f"Command: `{settings['command']}`",
        "",
        *[
            f"Runs added later (`--resume`, {later['started_at']}): `{later['command']}`\n"
            for later in settings.get("later_commands", [])
        ],
        f"Machine: nproc {machine['nproc']}, CPU {machine['cpu_model']}, "
        f"{machine['memory_gb']} GB RAM, Python {machine['python']}; shared with other jobs "
        f"(1-minute load average per run in runs.csv). Versions: "
        + ", ".join(f"{k} {v}" for k, v in settings["versions"].items())
        + ".",
        "",
        f"Data: {ctx['data_origin']}; {ctx['data_info']}. Space: {ctx['space']} "
        f"(max_epochs {ctx['max_epochs']}, patience {ctx['patience']}, "
        f"{'with' if ctx.get('enqueue') else 'without'} the enqueued course CNN, "
        f"{'with' if ctx.get('with_mixing') else 'without'} searched synthetic mixing). "
        f"Budget {ctx['budget']:.0f} s per run, seeds {ctx['seeds']} (runs per configuration: "
        "the 'reached' column). "
        f"Started {settings.get('started_at', '?')}, finished {settings.get('finished_at', '?')}.",
        "",
        "## Headline",
        "",
        *_headline_lines(headline(groups, target, our_default), labels, margin),
        "",
        *_match_kt_lines(groups, labels, our_default),
        "## Per configuration",
        "",
        f"Medians over seeds, [min-max] where there are several. Time to target "
        f"(val acc >= {target:.4f}): a run that never reaches it counts as the budget. "
        "Trials: finished within the budget (complete/pruned/failed, medians). First trial "
        "started: seconds from the process start to its first trial (start-up cost).",
        "",
        "| configuration | time to target (s) | reached | best val acc | test acc of winner "
        "| trials | first trial started (s) | first result (s) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for config, group in groups.items():
        ttt, reached = time_to_target(group, target)
        bests = [v for r in group if (v := r.best_value()) is not None]
        test_accs = [
            float(t) for r in group if (t := tests.get(r.key, {}).get("test_accuracy")) is not None
        ]
        counts = [r.counts() for r in group]
        n_trials = _median([float(r.n_finished()) for r in group])
        split = "/".join(
            f"{statistics.median(c[k] for c in counts):g}" for k in ("COMPLETE", "PRUNED", "FAIL")
        )
        firsts = [f for r in group if (f := r.first_result()) is not None]
        starts = [float(s) for r in group if (s := r.meta.get("first_trial_start_s")) is not None]
        lines.append(
            f"| {labels[config]} | {ttt:.0f} | {reached}/{len(group)} | {_range(bests)} | "
            f"{_range(test_accs)} | {n_trials:g} ({split}) | {_fmt(_median(starts), 0)} | "
            f"{_fmt(_median(firsts), 0)} |"
        )
    lines += [
        "",
        "## Other targets",
        "",
        "| margin | target | best KT (s) | ours default (s) | ratio | ours best config | ratio |",
        "|---:|---:|---|---:|---:|---|---:|",
    ]
    for m in sorted({margin, *EXTRA_MARGINS}):
        h = headline(groups, best_any - m, our_default)
        if h is None:
            continue
        lines.append(
            f"| {m:.2f} | {h['target']:.4f} | {labels[h['best_kt']]}: {h['kt_time']:.0f} "
            f"| {h['default_time']:.0f} | {_fmt(h['default_ratio'], 2)} "
            f"| {labels[h['best_ours']]}: {h['best_ours_time']:.0f} "
            f"| {_fmt(h['best_ours_ratio'], 2)} |"
        )
    start_v, end_v = ctx.get("renderer_at_start"), ctx.get("renderer_at_end")
    problems = []
    if ctx.get("with_mixing") and start_v and end_v and start_v != end_v:
        problems.append(
            f"the synthetic renderer changed during the benchmark ({start_v} -> {end_v}): runs "
            "after the change regenerated synthetic-mixing pools inside their budget"
        )
    problems += [
        f"{r.key}: exit {r.meta.get('returncode')} before the budget: "
        + " | ".join(r.meta.get("log_tail", []))[:300]
        for r in runs
        if not r.meta.get("stopped_at_budget") and r.meta.get("returncode") not in (0, None)
    ]
    problems += [
        f"{k}: test accuracy not measured ({v.get('error')})"
        for k, v in tests.items()
        if v.get("test_accuracy") is None
    ]
    problems += [
        f"{r.key}: its winner re-scored on the validation split gives {check:.4f}, not the "
        f"{best:.4f} its run recorded: the runs were not validated on the same images"
        for r in runs
        if (best := r.best_value()) is not None
        and (check := tests.get(r.key, {}).get("val_accuracy_check")) is not None
        and abs(check - best) > VAL_CHECK_TOLERANCE
    ]
    lines += ["", f"Plot: {plot_path.name}. Time series: timeseries.csv; per run: runs.csv."]
    if problems:
        lines += ["", "## Problems", "", *[f"* {p}" for p in problems]]
    text = "\n".join(lines) + "\n"
    (out / "results.md").write_text(text, encoding="utf-8")
    return text
