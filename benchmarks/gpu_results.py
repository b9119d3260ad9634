"""Open what ``benchmarks/gpu_profile.sh`` brought back: unpack, then the report (and pins) of a grid.

A GPU window returns ``gpu-results.tar.gz`` (or its 15 MiB parts) and
``summary.txt``. This turns them into what the pipeline shows for a CPU run,
on any machine with the project installed:

1. unpack into ``--run`` (joining the parts in name order; all or nothing:
   a truncated archive leaves no folder); a folder that exists and is not
   empty is refused, so an older run is never mixed in;
2. a sweep run (``sweep/plan.json``): print its summary and stop; a sweep has
   no test metrics, so there is nothing to report or pin;
3. a grid run: the processed data the report draws its examples from, made
   here from the run's own params by the real stages (``segrepro download``
   from ``--mirror`` or the network, or ``--raw`` when a verified raw copy
   exists; then ``segrepro preprocess``), and refused unless its
   ``card.json`` equals the run's byte for byte (same code, same raw files:
   the same data);
4. ``segrepro report`` on the run's results → ``<run>/report.html`` (no
   ``dvc.lock`` exists for a run made without DVC, and the report's
   provenance says so; ``checkpoints.md5`` in the run folder lists the
   checkpoints);
5. with ``--pin PINS``: ``pin_gpu_results.main`` writes the run's class section.

Choices:

* every argument is checked before the archive is unpacked (the slow work
  follows it, and a refused run leaves no ``--run`` folder to get in the way
  of the next try): ``--mirror`` must hold ``CamVid/`` and ``--raw`` be a
  folder; ``--pin`` must be a pins file or a new path that can be written
  (``pin_gpu_results.check_pins``);
* with ``--pin``, a grid run that is no real GPU profile run (its archive
  holds ``dry.yaml``: ``gpu_profile.sh --cpu-tiny``; or its ``params.yaml``
  says a ``runtime.device`` other than ``cuda``) is refused before anything is
  written, naming why: its tiny or CPU results would replace a real class
  section of ``pins.yaml`` or put a CPU class into ``pins-gpu.yaml``.
  ``--pin-dry-run`` pins it anyway: the opt-in of the dry-run test, which pins
  into a pins file of its own to test this code on CPU. A sweep has nothing to
  pin, dry or not;
* a ``--run`` folder exists only when opening finished: when a step after the
  unpacking fails (no ``comparison.json``, the data made here, the report, the
  pinning; an interrupt too), what this invocation put into ``--run`` is
  removed before the error line, so the same command runs again once the cause
  is fixed (before, a half-opened folder stayed behind and the rerun was
  refused as "exists and is not empty"). An empty ``--run`` folder the user
  made beforehand is left empty; nothing else can be there, since a non-empty
  one is refused before the unpacking. Removal rather than a marker of an
  unfinished run: a marker would be one more state for every reader of the
  folder (and for the "not empty" rule) to know, while the archive in ``OUT``
  is untouched and a rerun unpacks it again. The price: the rerun repeats the
  download, preprocessing and report (minutes), and the logs of a window that
  finished no seed are read from the printed summary, or by unpacking the
  archive by hand (``cat OUT/gpu-results.tar.gz* | tar xz``). If the removal
  itself fails, the error line says so and asks for the folder to be removed.

    python benchmarks/gpu_results.py .gpu/out --run .gpu/run-h100 [--mirror DIR | --raw DIR] [--pin pins-gpu.yaml]
"""
from __future__ import annotations

import argparse
import gzip
import io
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zlib
from collections.abc import Callable
from pathlib import Path

from segrepro.atomic import write_error
from segrepro.data.download import resolve_mirror
from segrepro.errors import SegreproError, reason
from segrepro.params import load_params

import pin_gpu_results  # beside this file: a script's own folder is on sys.path

ARCHIVE = "gpu-results.tar.gz"


def archive_bytes(out: Path) -> bytes:
    """The archive, whole or joined from its ``.part-*`` files (``split`` names them in order)."""
    if not out.is_dir():
        raise SegreproError(f"{out} is not a folder; pass the folder gpu_profile.sh wrote ($OUT)")
    whole = out / ARCHIVE
    if whole.is_file():
        return whole.read_bytes()
    parts = sorted(out.glob(f"{ARCHIVE}.part-*"))
    if not parts:
        raise SegreproError(f"{out} holds neither {ARCHIVE} nor {ARCHIVE}.part-*; pass the folder "
                            f"gpu_profile.sh wrote ($OUT)")
    try:
        return b"".join(p.read_bytes() for p in parts)
    except OSError as exc:
        raise SegreproError(f"{exc.filename} cannot be read ({reason(exc)}); fetch the window's files again") from None


def unpack(out: Path, run: Path, check: Callable[[Path], None] | None = None) -> None:
    """Extract into a sibling temporary folder, renamed to ``run`` only when every member came out and
    ``check(folder)`` (a ``SegreproError`` refuses the run) passed. A damaged archive is told apart from
    a folder that cannot be written (disk full, no permission), and the run folder gets the umask's mode,
    not the temporary folder's 0700."""
    if run.exists() and (not run.is_dir() or any(run.iterdir())):
        raise SegreproError(f"{run} exists and is not empty; pass a new --run folder")
    data = archive_bytes(out)
    try:
        run.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{run.name}.", dir=run.parent))
    except OSError as exc:
        raise write_error(run, exc, directory=True) from None
    try:
        try:
            with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
                tar.extractall(tmp, filter="data")
        except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as exc:  # BadGzipFile is an OSError too
            raise SegreproError(f"{out}/{ARCHIVE} cannot be unpacked ({exc}); a part is missing or truncated: "
                                f"fetch the window's files again") from exc
        except OSError as exc:  # the archive read whole, but writing its members failed (disk full, ...)
            raise write_error(run, exc, directory=True) from None
        if check is not None:
            check(tmp)
        try:
            # mkdtemp's folder is 0700; the run folder gets the mode any new folder gets here (the umask's)
            umask = os.umask(0)
            os.umask(umask)
            tmp.chmod(0o777 & ~umask)
            if run.exists():
                run.rmdir()  # empty, checked above
            tmp.rename(run)
        except OSError as exc:
            raise write_error(run, exc, directory=True) from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def check_pinnable(out: Path, folder: Path) -> None:
    """Raise if the run unpacked in ``folder`` (from ``out``) is a grid run that is no real GPU profile run."""
    if (folder / "sweep" / "plan.json").is_file():
        return  # a sweep: nothing is pinned
    params = folder / "params.yaml"
    if not params.is_file():
        raise SegreproError(f"{out}/{ARCHIVE} holds no params.yaml: the run stopped before its params were merged "
                            f"(see its summary.txt); nothing to report or pin")
    pin_gpu_results.refuse_dry_run(f"the run in {out}", params, load_params(params))


def segrepro(*args: str) -> None:
    """One real stage through segrepro's CLI; its own error line is passed on."""
    done = subprocess.run([sys.executable, "-m", "segrepro.cli", *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise SegreproError(f"segrepro {args[0]} failed: {(done.stderr.strip() or done.stdout.strip())[-800:]}")


def local_data(run: Path, mirror: str | None, raw: Path | None) -> Path:
    """The run's processed data, made here; equal to the run's by its card."""
    params, processed = run / "params.yaml", run / "local" / "processed"
    if raw is None:
        raw = run / "local" / "raw"
        segrepro("download", "--params", str(params), "--out", str(raw), *(["--mirror", mirror] if mirror else []))
    segrepro("preprocess", "--params", str(params), "--raw", str(raw), "--out", str(processed))
    # Named by their place in the archive: a failure removes ``run`` (the module docstring's choice).
    card = Path("data", "processed", "card.json")
    theirs, ours = run / card, processed / "card.json"
    if not theirs.is_file():
        raise SegreproError(f"{card} is missing from the archive; the run did not finish preprocessing")
    if theirs.read_bytes() != ours.read_bytes():
        raise SegreproError(f"the data preprocessed here differs from the GPU run's ({card} in the archive): the "
                            f"code or the raw files differ; check out the commit the run used")
    return processed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="the folder gpu_profile.sh wrote its results to ($OUT)")
    parser.add_argument("--run", type=Path, required=True, help="a new folder to unpack into")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--mirror", default=os.environ.get("SEGREPRO_CAMVID_MIRROR"),
                        help="local CamVid mirror for the download stage (default: $SEGREPRO_CAMVID_MIRROR, "
                             "else the network)")
    source.add_argument("--raw", type=Path, help="an already downloaded, verified raw CamVid (data/raw/camvid)")
    parser.add_argument("--pin", type=Path, help="also pin the run into this pins file (e.g. pins-gpu.yaml)")
    parser.add_argument(pin_gpu_results.DRY_RUN_FLAG, action="store_true",
                        help="with --pin: pin a dry run or a CPU run too (tests of the pinning code, into a pins "
                             "file of their own)")
    args = parser.parse_args(argv)
    try:
        resolve_mirror(args.mirror)
        if args.raw is not None and not args.raw.is_dir():
            raise SegreproError(f"--raw {args.raw} is not a folder; pass a downloaded raw CamVid (data/raw/camvid), "
                                f"or --mirror")
        if args.pin is not None:
            pin_gpu_results.check_pins(args.pin)
        refuse = args.pin is not None and not args.pin_dry_run
        existed = args.run.is_dir()  # then empty (unpack refuses anything else): left so on a failure
        unpack(args.out, args.run, (lambda folder: check_pinnable(args.out, folder)) if refuse else None)
        try:
            status = open_run(args)
        except SegreproError as exc:
            raise SegreproError(f"{exc}{discard(args.run, existed)}") from exc
        except BaseException:
            discard(args.run, existed)
            raise
        if status != 0:  # pin_gpu_results printed its own error line
            discard(args.run, existed)
        return status
    except SegreproError as exc:
        print(f"gpu_results: error: {exc}", file=sys.stderr)
        return 2


def discard(run: Path, existed: bool) -> str:
    """Remove what this invocation unpacked and made in ``run`` after a later step failed (the module
    docstring's choice); an empty folder that ``existed`` before is made again, empty. Returns "" or, if
    something could not be removed, the end of the error line saying so."""
    shutil.rmtree(run, ignore_errors=True)
    try:
        if existed:
            run.mkdir(exist_ok=True)
        left = run.exists() and (not run.is_dir() or any(run.iterdir()))
    except OSError:
        left = True
    return (f"; {run} could not be removed and is not a finished run: remove it before running again"
            if left else "")


def open_run(args: argparse.Namespace) -> int:
    """Everything after the unpacking (steps 2 to 5 of the module docstring); raises on a failure, or
    returns pin_gpu_results' exit status."""
    summary = args.run / "summary.txt"
    print(summary.read_text() if summary.is_file() else f"(no summary.txt in {args.run})")
    if (args.run / "sweep" / "plan.json").is_file():
        print(f"\na sweep (validation only): its summary is above and in {args.run}/results/sweep.json")
        return 0
    results = args.run / "results"
    if not (results / "comparison.json").is_file():
        raise SegreproError(f"results/comparison.json is missing from {args.out}/{ARCHIVE}: no complete seed "
                            f"finished in the window (see runs.tsv above); nothing to report or pin")
    processed = local_data(args.run, args.mirror, args.raw)
    segrepro("report", "--params", str(args.run / "params.yaml"), "--results", str(results),
             "--data", str(processed), "--lock", str(args.run / "dvc.lock"),
             "--tables", str(args.run / "tables"), "--executed", str(args.run / "report.ipynb"),
             "--out", str(args.run / "report.html"))
    print(f"\nreport: {args.run / 'report.html'}")
    if args.pin is None:
        return 0
    # pin_gpu_results prints its diff, or its own error line
    return pin_gpu_results.main(["--results", str(results), "--checkpoints", str(args.run / "checkpoints.md5"),
                                 "--params", str(args.run / "params.yaml"), "--processed", str(processed),
                                 "--pins", str(args.pin)]
                                + ([pin_gpu_results.DRY_RUN_FLAG] if args.pin_dry_run else []))


if __name__ == "__main__":
    sys.exit(main())
