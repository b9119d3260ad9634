"""``segrepro <stage>``: one subcommand per DVC stage.

Every stage reads the whole ``params.yaml`` (so a typo anywhere fails
early) but uses only its own sections, which are the ones ``dvc.yaml`` lists
for it. Paths are arguments matching the stage's deps and outs. User errors
print one line naming the problem and the fix, and exit with status 2;
an ``ATEN_CPU_CAPABILITY`` PyTorch would ignore or could not run on this CPU
is one of them, checked before any kernel runs (``runtime.check_capability``).

Ctrl-C (SIGINT) and SIGTERM end any stage with one line on stderr and the
shell's conventional status, 128 + signal number (130, 143), without a
traceback. SIGTERM is turned into a ``KeyboardInterrupt`` subclass so that
everything which cleans up on Ctrl-C (``segrepro.atomic`` removing its
``.partial`` scratch, papermill shutting its kernel down) does the same on
SIGTERM. Progress goes to stdout (``segrepro.progress``), so stderr holds
only that line. A second signal during the cleanup exits at once. A signal
the process was started ignoring (``nohup``, ``cmd &`` in a script) stays
ignored. Nothing a stage writes appears before it finished (``segrepro.atomic``);
a killed ``train`` resumes from its last finished epoch when rerun
(``training.resume``).

Under ``dvc repro`` (``$DVC_STAGE`` set) a stage also ends when DVC dies:
on Linux it asks the kernel (``prctl(PR_SET_PDEATHSIG)``) for a SIGTERM when
its parent exits, so ``kill -9`` of ``dvc`` no longer leaves an orphaned
trainer that later writes into restored outputs. Outside DVC this is off, so
``nohup segrepro train … &`` survives its shell.
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

from segrepro import layout
from segrepro.errors import SegreproError


def _download(args: argparse.Namespace) -> None:
    from segrepro.data.download import MIRROR_ENV, download_camvid
    from segrepro.data.manifest import packaged_manifest
    from segrepro.params import load_params

    params = load_params(args.params)
    mirror = args.mirror or os.environ.get(MIRROR_ENV)
    download_camvid(args.out, params.download.url, args.manifest or packaged_manifest("camvid"), mirror)


def _preprocess(args: argparse.Namespace) -> None:
    from segrepro.data.preprocess import preprocess_camvid
    from segrepro.params import load_params

    params = load_params(args.params)
    p, b = params.preprocess, params.base
    preprocess_camvid(args.raw, args.out, p.height, p.width, p.max_images, b.num_classes, b.ignore_index)


def _train(args: argparse.Namespace) -> None:
    from segrepro.params import load_params
    from segrepro.params_ranges import check_seed
    from segrepro.training.stage import train

    check_seed(args.seed)
    params = load_params(args.params)
    key = layout.run_key(args.method, args.seed)
    last = train(params, args.method, args.seed, args.data, args.checkpoint or layout.checkpoint(key),
                 args.live or layout.live_dir(key))
    print(f"{args.method}-{args.seed}: " + ", ".join(f"{k} {v:.4f}" for k, v in last.items()))


def _evaluate(args: argparse.Namespace) -> None:
    from segrepro.evaluation.evaluate import evaluate
    from segrepro.params import load_params
    from segrepro.params_ranges import check_seed

    check_seed(args.seed)
    params = load_params(args.params)
    key = layout.run_key(args.method, args.seed)
    result = evaluate(params, args.method, args.seed, args.data, args.checkpoint or layout.checkpoint(key),
                      args.out or layout.metrics_json(key), args.per_image or layout.per_image(key))
    bf = ", ".join(f"{k} {v * 100:.2f}" for k, v in result.items() if k.startswith("bf@"))
    print(f"{args.method}-{args.seed}: test mIoU {result['miou'] * 100:.2f}; {bf}; "
          f"Boundary IoU {result['boundary_iou'] * 100:.2f}")


def _compare(args: argparse.Namespace) -> None:
    from segrepro.evaluation.compare import compare
    from segrepro.params import load_params, parent_method

    params = load_params(args.params)
    summary = args.summary or args.out.with_name(layout.SUMMARY.name)   # beside --out: a side run spares results/
    compare(args.per_image, params.base.methods, params.base.seeds, args.out,
            parents={m: parent_method(params, m) for m in params.base.methods}, summary_out=summary)
    print(f"comparison written to {args.out}")


def _report(args: argparse.Namespace) -> None:
    from segrepro.params import load_params, parent_method
    from segrepro.reporting.render import render_report

    params = load_params(args.params)
    card = Path(args.data) / "card.json"   # the notebook's first read: missing, it is one line, not a failed cell
    if not card.is_file():
        raise SegreproError(f"dataset card {card} is missing; pass --data the processed folder "
                            f"(`dvc repro preprocess` writes {layout.PROCESSED})")
    parameters = {"results_dir": str(Path(args.results).resolve()),
                  "processed_dir": str(Path(args.data).resolve()),
                  "lock_path": str(Path(args.lock).resolve()),
                  "params_path": str(Path(args.params).resolve()),
                  "tables_dir": str(Path(args.tables).resolve()),
                  "dataset": params.base.dataset,
                  "methods": list(params.base.methods), "seeds": list(params.base.seeds),
                  "title": params.report.title,
                  "variants": {name: parent_method(params, name) for name in params.model.variants}}
    render_report(args.notebook, args.executed, args.out, parameters)
    print(f"report written to {args.out}")


def _audit(args: argparse.Namespace) -> int:
    from segrepro.atomic import check_output
    from segrepro.audit.audit import run_audit, update_pins
    from segrepro.params import load_params

    params = load_params(args.params)
    expected = layout.run_keys(params.base.methods, params.base.seeds)
    pins_path = Path(args.pins or params.audit.pins)
    if args.update:
        diff = update_pins(pins_path, args.metrics, args.lock, expected)
        print(diff or f"{pins_path} unchanged")
        return 0
    for out in (args.out_json, args.out_md):  # a bad output path is one line before any check runs
        check_output(out, others={"--pins": pins_path, "--lock": args.lock})
    code, table = run_audit(pins_path, Path(args.metrics), Path(args.lock), expected,
                            Path(args.out_json), Path(args.out_md))
    print(table)
    return code


def _parser() -> argparse.ArgumentParser:
    from segrepro.models.methods import METHOD_NAMES   # torch-free: the one method list
    parser = argparse.ArgumentParser(prog="segrepro", description=__doc__.splitlines()[0].replace("``", ""))
    sub = parser.add_subparsers(dest="stage", required=True)

    def stage(name: str, func, help_text: str) -> argparse.ArgumentParser:
        # argparse %-formats the parent's listing of subcommands (not a description): "95%" must be escaped.
        p = sub.add_parser(name, help=help_text.replace("%", "%%"), description=help_text)
        p.add_argument("--params", type=Path, default=Path("params.yaml"), help="params file (default: params.yaml)")
        p.set_defaults(func=func)
        return p

    p = stage("download", _download, "Fetch CamVid (network or mirror) and verify every file's sha256.")
    p.add_argument("--out", type=Path, default=layout.RAW, help=f"folder to write (default: {layout.RAW})")
    p.add_argument("--mirror", help="local mirror directory holding CamVid/ (default: $SEGREPRO_CAMVID_MIRROR)")
    p.add_argument("--manifest", type=Path, help="sha256 manifest (default: the packaged CamVid manifest)")

    p = stage("preprocess", _preprocess, "Resize and pack the splits; write the dataset card.")
    p.add_argument("--raw", type=Path, default=layout.RAW, help=f"the downloaded CamVid (default: {layout.RAW})")
    p.add_argument("--out", type=Path, default=layout.PROCESSED, help=f"folder to write (default: {layout.PROCESSED})")

    for name, func, text in (("train", _train, "Train one method with one seed; write its checkpoint."),
                             ("evaluate", _evaluate, "Evaluate one checkpoint on the test split.")):
        p = stage(name, func, text)
        p.add_argument("--method", required=True, help=f"a method ({', '.join(METHOD_NAMES)}) or an ablation "
                                                       "variant of params.yaml's model section")
        p.add_argument("--seed", type=int, required=True, help="the run's seed (0 … 2^32 − 1)")
        p.add_argument("--data", type=Path, default=layout.PROCESSED,
                       help=f"the processed dataset (default: {layout.PROCESSED})")
        # The paths default to the pipeline's own for the run (segrepro.layout), as dvc.yaml passes them.
        p.add_argument("--checkpoint", type=Path, help=f"default: {layout.checkpoint('<method>-<seed>')}")
        if name == "train":
            p.add_argument("--live", type=Path,
                           help=f"DVCLive directory to write (default: {layout.live_dir('<method>-<seed>')})")
        else:
            p.add_argument("--out", type=Path,
                           help=f"metrics JSON to write (default: {layout.metrics_json('<method>-<seed>')})")
            p.add_argument("--per-image", type=Path, help="per-image statistics (.npz) to write "
                                                          f"(default: {layout.per_image('<method>-<seed>')})")

    p = stage("compare", _compare, "Mean ± std over seeds and 95% intervals of each method vs the baseline.")
    p.add_argument("--per-image", type=Path, default=layout.PER_IMAGE,
                   help=f"evaluate's per-image statistics, one .npz per run (default: {layout.PER_IMAGE})")
    p.add_argument("--out", type=Path, default=layout.COMPARISON, help=f"default: {layout.COMPARISON}")
    p.add_argument("--summary", type=Path, default=None,
                   help=f"compact summary, the pipeline's DVC metrics (default: {layout.SUMMARY.name} beside --out, "
                        f"which for the pipeline's --out is {layout.SUMMARY})")

    p = stage("report", _report, "Execute the report notebook (papermill) and export HTML.")
    p.add_argument("--results", type=Path, default=layout.RESULTS,
                   help=f"metrics, per-image statistics and comparison.json (default: {layout.RESULTS})")
    p.add_argument("--data", type=Path, default=layout.PROCESSED,
                   help=f"the processed dataset, for its card (default: {layout.PROCESSED})")
    p.add_argument("--lock", type=Path, default=Path("dvc.lock"), help="read for provenance only (default: dvc.lock)")
    p.add_argument("--tables", type=Path, default=layout.TABLES,
                   help=f"folder for the CSV/Markdown/LaTeX tables (default: {layout.TABLES})")
    p.add_argument("--notebook", type=Path, default=Path("notebooks/report.ipynb"),
                   help="the report notebook (default: notebooks/report.ipynb)")
    p.add_argument("--executed", type=Path, default=Path("reports/report.ipynb"),
                   help="the executed notebook to write (default: reports/report.ipynb)")
    p.add_argument("--out", type=Path, default=Path("reports/report.html"),
                   help="the HTML report to write (default: reports/report.html)")

    p = stage("audit", _audit, "Compare results and hashes with the pinned values; exit 1 on drift.")
    p.add_argument("--pins", type=Path, help="pins file (default: audit.pins in params.yaml)")
    p.add_argument("--metrics", type=Path, default=layout.METRICS,
                   help=f"evaluate's metrics (default: {layout.METRICS})")
    p.add_argument("--lock", type=Path, default=Path("dvc.lock"),
                   help="the hashes and params the stages ran with (default: dvc.lock)")
    p.add_argument("--out-json", default="reports/audit.json", help="default: reports/audit.json")
    p.add_argument("--out-md", default="reports/audit.md", help="default: reports/audit.md")
    p.add_argument("--update", action="store_true", help="rewrite the pins from the current results and show the diff")
    return parser


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so the same cleanup runs."""


def _interrupted_line(stage: str, signum: int) -> str:
    return (f"segrepro {stage}: interrupted ({signal.Signals(signum).name}); "
            "the stage did not finish; rerun it")


def _install_handlers(stage: str) -> dict[int, object]:
    """First SIGINT/SIGTERM: raise (cleanup runs); a second one: print the line and exit at once."""
    caught: list[int] = []

    def handler(signum: int, frame: object) -> None:
        if caught:  # cleanup is taking too long for the user: stop now (scratch files keep their .partial names)
            sys.stderr.write(_interrupted_line(stage, caught[0]) + "\n")
            sys.stderr.flush()
            os._exit(128 + caught[0])
        caught.append(signum)
        raise Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()

    previous = {}
    for signum in (signal.SIGINT, signal.SIGTERM):
        if signal.getsignal(signum) == signal.SIG_IGN:  # started ignoring it (nohup, `cmd &`): keep that
            continue
        try:
            previous[signum] = signal.signal(signum, handler)
        except ValueError:  # not the main thread (main() called from a worker): keep Python's defaults
            pass
    return previous


PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def _end_with_parent(handled: dict[int, object]) -> None:
    """Under DVC on Linux: receive SIGTERM (SIGKILL if SIGTERM is ignored) when the parent process dies."""
    if "DVC_STAGE" not in os.environ or not sys.platform.startswith("linux"):
        return
    import ctypes

    signum = signal.SIGTERM if signal.SIGTERM in handled else signal.SIGKILL
    parent = os.getppid()
    try:
        if ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(signum), 0, 0, 0) != 0:
            return
    except (OSError, AttributeError):  # no libc prctl: keep the old behaviour
        return
    # The parent died between the two calls (we were re-parented): act as if it came after. Not
    # "parent is pid 1": in a container started with --init the stage's parent is pid 1 all along.
    if os.getppid() != parent:
        os.kill(os.getpid(), signum)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    previous = _install_handlers(args.stage)
    try:
        _end_with_parent(previous)
        from segrepro.runtime import check_capability

        check_capability()  # before any kernel: a bad ATEN_CPU_CAPABILITY is one line, not a SIGILL
        return args.func(args) or 0
    except SegreproError as exc:
        print(f"segrepro {args.stage}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        signum = signal.SIGTERM if isinstance(exc, Terminated) else signal.SIGINT
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    # Outside the except block, so the traceback and the frames it holds are released first.
    from segrepro.progress import close_bars

    close_bars()
    sys.stdout.flush()
    print(_interrupted_line(args.stage, signum), file=sys.stderr)
    return 128 + signum


if __name__ == "__main__":
    sys.exit(main())
