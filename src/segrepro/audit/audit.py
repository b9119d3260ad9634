"""Audit a run against the pins: were outputs edited, and do the results reproduce?

Three kinds of rows (``check.Check``: pass / drift / missing / stale / skip):

1. **Edits** (``edits.py``): every output of preprocess, train, evaluate and
   compare hashes to what ``dvc.lock`` recorded when its stage ran; anything
   else was edited afterwards. This, not a tolerance, is what protects the
   stored results, ``comparison.json`` and the per-image files. Beside them,
   ``stale.py``: the params those stages ran with (as ``dvc.lock`` recorded
   them) must equal the params file now, else the results are not the
   checkout's (``segrepro audit`` run without ``dvc repro`` after an edit).
2. **Same class** — the results were trained in an environment class that has
   pins (``environment.class_key``) with the same torch version, on CPU: the
   run is bit-reproducible, so each checkpoint md5 must equal the pinned one
   and each pinned metric must lie within ``tolerance.same_class`` (1e-6).
3. **Band** — a class without pins, another torch version, any CUDA run, or
   a seed the pins of its own class do not hold: no hash check (``skip``,
   saying why); each method's mean over those seeds of each pinned metric
   must lie within the statistical band of ``bands.py`` around the pinned
   mean of its own class for an unpinned seed, else of the pinned class it
   lies closest to.

The environment of a result is the ``train_environment`` recorded in its
metrics JSON (the machine running the audit only as a fallback). The data
hash in ``dvc.lock`` is held to the pinned one whatever the class. Choices:
a pinned seed this run does not produce is ``skip`` (pins may hold more
seeds than the default run, to give the band its seed spread); a seed this
run adds to a pinned class (seed 2 of ``dvc exp run -S 'base.seeds=[0,1,2]'``
where seeds 0 and 1 are pinned) is a fresh draw of the same recipe, so it
takes the band rather than failing for want of a pin; a method that no
class pins (an ablation variant) is ``missing``.
"""
from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from segrepro.atomic import atomic_file, write_json
from segrepro.audit.bands import band, mean_std, pooled_std
from segrepro.audit.check import Check
from segrepro.audit.edits import edit_checks
from segrepro.audit.environment import class_key, environment, is_bit_exact, result_environment
from segrepro.audit.lock import out_md5, read_lock
from segrepro.audit.pins import (DATA_PATH, DATA_STAGE, REPIN, checkpoint_path, load_pins, load_result,
                                 tolerances, update_pins)
from segrepro.audit.stale import stale_checks
from segrepro.layout import method_of, metrics_json

__all__ = ["Check", "Checks", "environment", "load_pins", "run_audit",
           "run_checks", "update_pins", "write_reports"]


class Checks(list):
    """The rows of an audit, plus ``context``: the class of the results and which checks applied."""

    def __init__(self, rows=(), context: dict | None = None):
        super().__init__(rows)
        self.context = context or {}


def _same_class(key: str, result: dict, section: dict, stages: dict, tol: float, klass: str) -> list[Check]:
    pin = section["results"][key]
    pinned_md5 = (pin.get("checkpoint") or {}).get("md5")
    md5 = out_md5(stages, f"train@{key}", checkpoint_path(key))
    status = "missing" if md5 is None else ("pass" if md5 == pinned_md5 else "drift")
    note = ("" if status == "pass" else "same class and torch train bit for bit: training changed; "
            f"{REPIN} if intended")
    rows = [Check(key, "checkpoint md5", status, md5 or "-", str(pinned_md5), note)]
    for metric, pinned in sorted((pin.get("metrics") or {}).items()):
        if metric not in result:
            rows.append(Check(key, metric, "missing", "-", f"{pinned:.6f}", "metric absent from the result"))
            continue
        ok = abs(float(result[metric]) - pinned) <= tol
        rows.append(Check(key, metric, "pass" if ok else "drift", f"{float(result[metric]):.6f}",
                          f"{pinned:.6f} ± {tol:g}", f"same class {klass}"))
    return rows


def _band_checks(method: str, runs: dict[str, dict], classes: dict, tol: dict, own: str) -> list[Check]:
    """Band rows of one method's runs: against ``own`` class when the runs are unpinned seeds of a
    class that pins the method, else (``own`` empty) against whichever pinned class they lie closest to."""
    candidates = {name: sec["summary"][method] for name, sec in classes.items()
                  if method in sec["summary"] and own in ("", name)}
    if not candidates:
        return [Check(method, "pin", "missing", f"{len(runs)} seed(s)", "no pinned class has this method", REPIN)]
    rows = []
    for metric in sorted({m for summary in candidates.values() for m in summary.get("mean", {})}):
        values = [float(r[metric]) for r in runs.values() if metric in r]
        if len(values) < len(runs):
            rows.append(Check(method, metric, "missing", "-", "-", "metric absent from a result"))
            continue
        run_mean = mean_std(values)[0]
        best = None
        for name, summary in candidates.items():
            pinned = (summary.get("mean") or {}).get(metric)
            if pinned is None:
                continue
            s, dof = pooled_std(classes[name]["summary"], metric)
            b = band(s, dof, len(values), int(summary["seeds"]), tol["cross_class_floor"],
                     tol["cross_class_sigmas"])
            score = abs(run_mean - pinned) / b.width
            if best is None or score < best[0]:
                best = (score, name, pinned, b)
        score, name, pinned, b = best
        rows.append(Check(method, f"{metric} (mean of {len(values)} seed(s))", "pass" if score <= 1 else "drift",
                          f"{run_mean:.4f}", f"{pinned:.4f} ± {b.width:.4f} ({name})",
                          f"band vs {name}: {b.reason}"))
    return rows


def run_checks(pins: dict, metrics_dir: Path, lock_path: Path, expected: list[str],
               repo_root: Path | None = None) -> Checks:
    """All rows of the audit. Paths in dvc.lock resolve against its directory, as in DVC
    (``repo_root`` is accepted for the old call signature and not needed)."""
    lock_path = Path(lock_path)
    stages = read_lock(lock_path)
    tol = tolerances(pins)
    classes = pins["classes"]
    rows: list[Check] = []
    pinned_data = (pins.get("data") or {}).get("md5")
    data_md5 = out_md5(stages, DATA_STAGE, DATA_PATH)
    rows.append(Check("data", "dvc.lock md5", "missing" if not data_md5 else
                      ("pass" if data_md5 == pinned_data else "drift"), data_md5 or "-", str(pinned_data),
                      "" if data_md5 == pinned_data else "processed data changed; rerun preprocess or re-pin"))
    rows += edit_checks(stages, lock_path.parent, expected)
    rows += stale_checks(stages, lock_path.parent, expected)
    result_classes: dict[str, dict] = {}
    same_classes: set[str] = set()
    drawn: dict[tuple[str, str], dict[str, dict]] = {}   # (method, own class or "") → {key: result}
    for key in expected:
        result = load_result(metrics_dir, key)
        if result is None:
            rows.append(Check(key, "result", "missing", "-", str(metrics_json(key, metrics_dir)),
                              "run `dvc repro`"))
            continue
        env, recorded = result_environment(result)
        klass = class_key(env)
        section = classes.get(klass)
        own = ""            # the class whose pins an unpinned seed is held to; "": the closest class
        if not is_bit_exact(env):
            why = "GPU training is not bit-exact (bf16 autocast, cuDNN autotuning)"
        elif section is None:
            why = f"no pins for class {klass}"
        elif section["environment"].get("torch") != env["torch"]:
            why = f"torch {env['torch']} differs from the pinned {section['environment'].get('torch')}"
        elif key not in section["results"] and method_of(key) in section["summary"]:
            why, own = f"a seed not pinned in {klass} is a fresh draw of the pinned recipe", klass
        elif key not in section["results"]:
            why = f"{method_of(key)} is not pinned in {klass}"
        else:
            why = ""
        info = result_classes.setdefault(klass, {"keys": [], "source": set(), "check": set()})
        info["keys"].append(key)
        info["source"].add("train_environment" if recorded else "fallback: the auditing machine")
        if not why:
            same_classes.add(klass)
            info["check"].add(f"same class: checkpoint md5 equal to the pins, metrics within "
                              f"{tol['same_class']:g} (bit-reproducible on CPU)")
            rows += _same_class(key, result, section, stages, tol["same_class"], klass)
        else:
            info["check"].add(f"statistical band on each method's mean over seeds ({why})")
            rows.append(Check(key, "checkpoint md5", "skip",
                              out_md5(stages, f"train@{key}", checkpoint_path(key)) or "-", "-",
                              f"no hash check: {why}"))
            drawn.setdefault((method_of(key), own), {})[key] = result
    for klass in sorted(same_classes):
        for key in sorted(set(classes[klass]["results"]) - set(expected)):
            rows.append(Check(key, "result", "skip", "-", f"pinned in {klass}",
                              "pinned but not part of this run's base.methods × base.seeds (extra pinned "
                              "seeds give the band its seed spread)"))
    for method, own in sorted(drawn):
        rows += _band_checks(method, drawn[method, own], classes, tol, own)
    context = {"result_classes": {k: {**v, "source": sorted(v["source"]), "check": "; ".join(sorted(v["check"]))}
                                  for k, v in result_classes.items()},
               "pinned_classes": sorted(classes), "tolerance": tol}
    return Checks(rows, context)


def _header(context: dict) -> list[str]:
    lines = []
    for klass, info in sorted(context.get("result_classes", {}).items()):
        lines.append(f"* Results {', '.join(info['keys'])}: trained in class **{klass}** "
                     f"(from {' and '.join(info['source'])}); checked with {info['check']}.")
    lines.append(f"* Pinned classes: {', '.join(context.get('pinned_classes', [])) or 'none'}.")
    tol = context.get("tolerance")
    if tol:
        lines.append(f"* Band = max({tol['cross_class_floor']:g}, {tol['cross_class_sigmas']:g}·s·"
                     "√(1/S_run + 1/S_pin)), s the pinned seed std pooled over methods: a run on another "
                     "class, or a seed its class has no pin for, is a fresh training draw "
                     "(see src/segrepro/audit/bands.py).")
    return lines


def write_reports(checks: list[Check], json_path: Path, md_path: Path) -> str:
    """Write audit.json and audit.md atomically; return the Markdown that is also printed."""
    context = getattr(checks, "context", {})
    failed = [c for c in checks if c.failed]
    write_json(json_path, {"passed": not failed, "failed": len(failed), **context,
                           "checks": [asdict(c) for c in checks]})
    lines = _header(context) + ["", "| subject | check | status | observed | pinned | note |",
                                "|---|---|---|---|---|---|"]
    lines += [f"| {c.subject} | {c.check} | {c.status} | {c.observed} | {c.pinned} | {c.note} |" for c in checks]
    verdict = "PASS" if not failed else f"FAIL: {len(failed)} check(s) drifted, missing or stale"
    table = "\n".join(lines) + f"\n\n**{verdict}**\n"
    with atomic_file(md_path) as tmp:
        tmp.write_text("# Audit against pinned results\n\n" + table)
    return table


def _write_failed(json_path: Path, md_path: Path, exc: BaseException) -> None:
    message = f"{type(exc).__name__}: {exc}"
    write_json(json_path, {"passed": False, "error": message, "checks": []})
    with atomic_file(md_path) as tmp:
        tmp.write_text(f"# Audit against pinned results\n\n**FAILED: the audit could not run** — {message}\n")


def run_audit(pins_path: Path, metrics_dir: Path, lock_path: Path, expected: list[str],
              json_path: Path, md_path: Path) -> tuple[int, str]:
    """Run the whole audit; return (exit code, Markdown). Never leaves an old PASS report behind:
    the old reports are removed first and a crash writes a FAILED report before re-raising."""
    for path in (json_path, md_path):
        Path(path).unlink(missing_ok=True)
    try:
        checks = run_checks(load_pins(pins_path), Path(metrics_dir), Path(lock_path), expected)
        table = write_reports(checks, Path(json_path), Path(md_path))
    except BaseException as exc:
        _write_failed(Path(json_path), Path(md_path), exc)
        raise
    return (1 if any(c.failed for c in checks) else 0), table
