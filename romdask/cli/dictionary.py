"""What the subcommands share about a dictionary of local reduced models (``romdask reduce
--local``): the ``--local`` and ``--rom`` values, opening a model-or-dictionary folder, and the
lines that show the clusters, the a-priori criterion, the selection and the dissimilarities."""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from romdask.cli.common import opened

__all__ = ["criterion_lines", "dissimilarity_lines", "is_dictionary_dir", "local_count", "model_lines",
           "open_dictionary", "replace_folder", "rom_choice", "selection_lines"]

#: the --rom values besides a local model's name (romdask.online.dictionary.CHOICES)
ROM_CHOICES = ("auto", "classifier", "best-of-2")


def local_count(text: str) -> int | str:
    """``--local``: "auto" or a number of local models >= 1 (argparse ``type=``)."""
    if text == "auto":
        return text
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of local models (>= 1) or 'auto'; got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number of local models (>= 1) or 'auto'; got {text!r}")
    return value


def is_dictionary_dir(path: str | os.PathLike) -> bool:
    """A dictionary folder, or what is left of one (a ``roms`` subfolder): opened as a dictionary,
    so that a damaged one is reported as such rather than as "not a reduced model"."""
    from romdask.online.dictionary import is_dictionary

    path = Path(path)
    return is_dictionary(path) or (path / "roms").is_dir()


def open_dictionary(path: str | os.PathLike) -> Any:
    """:meth:`ModelDictionary.open`, its refusals naming the folder."""
    from romdask.online.dictionary import ModelDictionary

    return opened(ModelDictionary.open, path)


def rom_choice(value: str, dictionary: Any, path: str | os.PathLike) -> str | int:
    """``--rom`` as :meth:`ModelDictionary.solve`'s ``choice``: a mode, or the index of a named model."""
    if value in ROM_CHOICES:
        return value
    if value in dictionary.names:
        return dictionary.names.index(value)
    raise ValueError(f"--rom {value}: {path} has local models {', '.join(dictionary.names)}; give one of them or "
                     f"{', '.join(ROM_CHOICES)}")


def _runs(runs: Sequence[str], shown: int = 4) -> str:
    return ", ".join(runs[:shown]) + (f", ... ({len(runs)} runs)" if len(runs) > shown else "")


def _modes(modes: Sequence[int]) -> str:
    return ", ".join(map(str, modes)) if len(modes) <= 6 else f"{', '.join(map(str, modes[:6]))}, ..."


def criterion_lines(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """The a-priori criterion as a table: one row per number of clusters tried."""
    lines = [f"  {'k':>3}  {'modes per cluster':<20} {'runs per cluster':<18} {'global modes':>12}  "
             f"{'cost ratio':>10}  {'separation':>10}"]
    for row in rows:
        separation = row.get("separation")
        lines.append(f"  {row['k']:>3}  {_modes(row['modes']):<20} {_modes(row['runs']):<18} "
                     f"{row['global_modes']:>12}  {row['cost_ratio']:>10.3f}  "
                     f"{'-' if separation is None else f'{separation:.3f}':>10}" + ("  <- chosen" if row.get("chosen") else ""))
    return lines


def model_lines(dictionary: Any) -> list[str]:
    """One line per local model: runs, medoid, modes, reduced points."""
    return [f"  {name}: {len(runs)} run(s) ({_runs(runs)}), medoid {medoid}, {model.n_modes} modes, "
            f"{model.n_points} reduced points"
            for name, runs, medoid, model in zip(dictionary.names, dictionary.clusters, dictionary.medoids,
                                                 dictionary.models)]


def selection_lines(dictionary: Any, prediction: Any) -> list[str]:
    """Which local model made ``prediction`` (a LocalPrediction) and why: the classifier's
    ranking and, when several were solved, their largest error indicators."""
    names, ranking = dictionary.names, prediction.ranking
    used = names[prediction.rom]
    why = {"classifier": "the classifier's choice", "forced": "forced by --rom",
           "best of 2 by the error indicator": "the lower error indicator of the classifier's two first"}
    lines = [f"local model {used} (trained on {_runs(dictionary.clusters[prediction.rom])}): "
             f"{why.get(prediction.reason, prediction.reason)}"]
    ranked = "; ".join(f"{names[c]} {ranking.distances[c]:.3g} ({ranking.nearest[c]})" for c in ranking.order)
    lines.append(f"  classifier: distance of each cluster's nearest training run, closest first: {ranked}"
                 + (" (ambiguous: the second within 1.5 times the first)" if ranking.ambiguous else ""))
    if len(prediction.tried) > 1:
        def shown(value: float) -> str:
            return "solve failed" if math.isinf(value) else "no indicator" if math.isnan(value) else f"{value:.3g}"

        lines.append("  tried, largest error indicator: "
                     + "; ".join(f"{names[c]} {shown(v)}" for c, v in prediction.tried.items()))
    return lines


def dissimilarity_lines(metadata: Mapping[str, Any], largest: int = 12) -> list[str]:
    """The dissimilarity matrix of the training runs (up to ``largest`` runs)."""
    entry = metadata.get("dissimilarity") or {}
    runs, matrix = entry.get("runs") or [], entry.get("matrix") or []
    if not runs:
        return ["dissimilarity of the training runs: not recorded"]
    head = ("dissimilarity of the training runs (0: one run's POD basis represents the other exactly, 1: "
            "captures nothing):")
    if len(runs) > largest:
        return [head, f"  {len(runs)} runs: see --json (metadata.dissimilarity)"]
    width = max(6, *(len(r) for r in runs))
    lines = [head, "  " + " " * width + "".join(f" {r:>{width}}" for r in runs)]
    for run, row in zip(runs, matrix):
        lines.append(f"  {run:<{width}}" + "".join(f" {v:>{width}.3f}" for v in row))
    return lines


def replace_folder(out: Path, save: Callable[[Path], Any], kinds: Sequence[Callable[[Path], bool]]) -> Path:
    """``save(tmp)`` beside ``out``, then swap it in: for --overwrite of a model by a dictionary
    or the reverse (each ``save`` replaces its own kind only). ``kinds`` say what ``out`` may be."""
    from romdask.online.integrity import replace_atomically

    def check(path: Path) -> None:
        if not any(kind(path) for kind in kinds):
            raise ValueError(f"{path} exists and is not a reduced model nor a dictionary: --overwrite replaces those "
                             "only; choose another --out")

    check(out)
    return replace_atomically(out, save, check)
