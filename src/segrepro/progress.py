"""Progress a person can follow while a long stage runs (train, evaluate, report).

Three helpers, one output convention:

* ``EpochProgress`` — for training: one plain line per finished epoch,
  always, e.g. ``sdn-0  epoch  3/16  train loss 1.234  val mIoU 35.12
  elapsed 1:02  ETA 4:10``; on a terminal also a tqdm bar over the epoch's
  steps showing the running mean loss.
* ``track`` — for any other loop: a tqdm bar on a terminal; otherwise at most
  five plain lines (start, 25 %, 50 %, 75 %, done with the elapsed time).
* ``task`` — for one long call without a loop of ours (papermill, a latency
  measurement): a start line and a ``done in m:ss`` line.

Choices (no source prescribes any of them):

* Stream: **stdout**, for every stage. stderr is kept for the one line that
  says a stage failed or was interrupted (``segrepro.cli``), so a non-empty
  stderr always means "something went wrong" and is exactly one line long.
  ``dvc repro`` shows both streams. Helpers take ``stream=None`` meaning
  ``sys.stdout`` looked up at call time (so redirection and pytest's capture
  work).
* Bars (tqdm, already a dvc dependency) only when ``stream.isatty()``; a log
  file or a pipe (CI, ``dvc repro > log``) gets plain lines only: no carriage
  returns, no escape codes. Every line is flushed as soon as it is written,
  so a block-buffered pipe still shows it at once.
* ETA = mean duration of the epochs finished in this run × epochs left
  (``eta_seconds``); epochs before ``start_epoch`` (a resumed run) are not
  timed. Durations print as ``m:ss``, or ``h:mm:ss`` from one hour on.
* ``val_miou`` (a fraction, as ``metrics.confusion.scores`` returns it) prints
  as a percentage with two decimals; an epoch without validation prints
  ``val mIoU     -``. ``train_loss`` falls back to the mean of the losses
  passed to ``step`` during that epoch.
"""
from __future__ import annotations

import contextlib
import math
import sys
import time
import weakref
from collections.abc import Callable, Iterable, Iterator
from typing import IO, TypeVar

from tqdm import tqdm

T = TypeVar("T")
Clock = Callable[[], float]

# Bars drawn by this module that are still open; ``close_bars`` clears them (the CLI's interrupt path).
_open_bars: weakref.WeakSet[tqdm] = weakref.WeakSet()


def _stream(stream: IO[str] | None) -> IO[str]:
    return sys.stdout if stream is None else stream


def is_tty(stream: IO[str] | None = None) -> bool:
    isatty = getattr(_stream(stream), "isatty", None)
    return bool(isatty and isatty())


def format_duration(seconds: float) -> str:
    """``m:ss`` below an hour, ``h:mm:ss`` from one hour on (rounded to whole seconds)."""
    total = max(0, int(round(seconds)))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def eta_seconds(elapsed: float, epochs_done: int, epochs_left: int) -> float:
    """Remaining time if every remaining epoch takes the mean time of the finished ones."""
    if epochs_done <= 0:
        raise ValueError("the ETA needs at least one finished epoch")
    return elapsed / epochs_done * max(0, epochs_left)


def say(text: str, stream: IO[str] | None = None) -> None:
    """Write one plain progress line and flush it."""
    out = _stream(stream)
    out.write(text + "\n")
    out.flush()


def _bar(stream: IO[str], **kwargs) -> tqdm:
    bar = tqdm(file=stream, leave=False, **kwargs)
    _open_bars.add(bar)
    return bar


def close_bars() -> None:
    """Clear every bar still drawn (e.g. before an interrupted stage prints its last line)."""
    for bar in list(_open_bars):
        bar.close()
        _open_bars.discard(bar)


class EpochProgress:
    """Training progress: per-step bar on a terminal, one plain line per epoch always.

    ``epoch(k, metrics)`` takes the 0-based index ``k`` of the epoch that just
    finished (as the training loop counts) and prints it 1-based: ``k + 1``/``epochs``.
    """

    def __init__(self, label: str, epochs: int, steps_per_epoch: int, start_epoch: int = 0,
                 stream: IO[str] | None = None, *, clock: Clock = time.monotonic) -> None:
        if epochs < 1 or steps_per_epoch < 0 or not 0 <= start_epoch < epochs:
            raise ValueError(f"EpochProgress needs epochs >= 1, steps_per_epoch >= 0 and "
                             f"0 <= start_epoch < epochs (got {epochs}, {steps_per_epoch}, {start_epoch})")
        self.label, self.epochs, self.steps_per_epoch = label, epochs, steps_per_epoch
        self.stream = _stream(stream)
        self.tty = is_tty(self.stream)
        self._clock = clock
        self._start = clock()
        self._current = start_epoch   # 0-based index of the epoch being trained
        self._timed = 0               # epochs finished in this run
        self._losses: list[float] = []
        self._bar: tqdm | None = None

    def __enter__(self) -> EpochProgress:
        self._start = self._clock()
        return self

    def __exit__(self, *exc: object) -> None:
        self._close_bar()

    def _close_bar(self) -> None:
        if self._bar is not None:
            self._bar.close()
            _open_bars.discard(self._bar)
            self._bar = None

    def step(self, loss: float) -> None:
        """One optimisation step done; on a terminal, advance the bar and show the running mean loss."""
        self._losses.append(float(loss))
        if not self.tty:
            return
        if self._bar is None:
            width = len(str(self.epochs))
            self._bar = _bar(self.stream, total=self.steps_per_epoch, unit="step",
                             desc=f"{self.label}  epoch {self._current + 1:>{width}}/{self.epochs}")
        self._bar.set_postfix_str(f"loss {sum(self._losses) / len(self._losses):.3f}", refresh=False)
        self._bar.update(1)

    def epoch(self, k: int, metrics: dict[str, float]) -> None:
        """Epoch ``k`` (0-based) finished: print its line with the elapsed time and the ETA."""
        self._close_bar()
        self._timed += 1
        elapsed = self._clock() - self._start
        eta = eta_seconds(elapsed, self._timed, self.epochs - (k + 1))
        loss = metrics.get("train_loss")
        if loss is None and self._losses:
            loss = sum(self._losses) / len(self._losses)
        miou = metrics.get("val_miou")
        loss_text = "-" if loss is None or not math.isfinite(loss) else f"{loss:.3f}"
        miou_text = "-" if miou is None else f"{miou * 100:.2f}"
        width = len(str(self.epochs))
        say(f"{self.label}  epoch {k + 1:>{width}}/{self.epochs}  train loss {loss_text:>5}  "
            f"val mIoU {miou_text:>5}  elapsed {format_duration(elapsed)}  ETA {format_duration(eta)}",
            self.stream)
        self._current = k + 1
        self._losses = []


def _marks(total: int) -> dict[int, int]:
    """Item count → percentage for the 25/50/75 % lines (none that coincide with the start or the end)."""
    marks: dict[int, int] = {}
    for pct in (25, 50, 75):
        count = math.ceil(total * pct / 100)
        if 0 < count < total and count not in marks:
            marks[count] = pct
    return marks


def track(iterable: Iterable[T], total: int | None = None, label: str = "", unit: str = "it",
          stream: IO[str] | None = None, *, clock: Clock = time.monotonic) -> Iterator[T]:
    """Yield from ``iterable`` showing progress: a bar on a terminal, else a few plain lines.

    ``total`` defaults to ``len(iterable)``. Both modes end with
    ``<label>: <n>/<total> <unit> done in m:ss``; without a terminal there is
    a start line and one at 25, 50 and 75 % before it.
    """
    out = _stream(stream)
    if total is None:
        total = len(iterable)  # type: ignore[arg-type]
    start = clock()
    count = 0
    if is_tty(out):
        bar = _bar(out, total=total, desc=label, unit=unit)
        try:
            for item in iterable:
                yield item
                count += 1
                bar.update(1)
        finally:
            bar.close()
            _open_bars.discard(bar)
    else:
        marks = _marks(total)
        say(f"{label}: 0/{total} {unit}", out)
        for item in iterable:
            yield item
            count += 1
            if count in marks:
                say(f"{label}: {count}/{total} {unit} ({marks[count]}%)  "
                    f"elapsed {format_duration(clock() - start)}", out)
    say(f"{label}: {count}/{total} {unit} done in {format_duration(clock() - start)}", out)


@contextlib.contextmanager
def task(label: str, stream: IO[str] | None = None, *, clock: Clock = time.monotonic) -> Iterator[None]:
    """``<label>...`` before the body and ``<label>: done in m:ss`` after it (nothing more on failure)."""
    out = _stream(stream)
    say(f"{label}...", out)
    start = clock()
    yield
    say(f"{label}: done in {format_duration(clock() - start)}", out)
