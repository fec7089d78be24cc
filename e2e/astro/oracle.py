"""Check a Source Extractor catalogue against a field's known star positions.

Usage:
  python3 oracle.py CATALOGUE TRUTH.csv [--radius 1.5] [--min-flux 1000]
                    [--min-recovered 0.9] [--max-spurious-frac 0.1]
  python3 oracle.py CATALOGUE --min-sources N     (a real image: no truth list)

CATALOGUE is an ASCII_HEAD catalogue (column names in "#   N NAME ..." lines)
with at least X_IMAGE and Y_IMAGE (FITS pixel coordinates, 1-based).
TRUTH.csv has columns x, y, flux (same pixel convention; flux in ADU), as
written by make_fields.py.

The tolerance (the defaults):
- a truth star is recovered if a detection lies within --radius (1.5 px) of
  it; each detection is used for at most one star (brightest stars first, each
  taking its nearest unused detection);
- at least --min-recovered (90%) of the truth stars with flux >= --min-flux
  (1000 ADU, S/N > ~10 at the simulated background) must be recovered;
- spurious detections (none within --radius of any truth star, faint ones
  included) may be at most max(2, --max-spurious-frac (10%) of the detections).
Without a truth list, --min-sources N only checks that the catalogue parses
and has at least N sources, all at positive pixel positions.

Exit status: 0 pass, 1 the catalogue fails the check, 2 unreadable input.
One line "oracle: PASS ..." or "oracle: FAIL ..." says why.
"""

import argparse
import csv
import math
import sys


class InputError(Exception):
    """A catalogue or truth file that cannot be read as documented."""


def parse_catalogue(text, source="catalogue"):
    """Parse an ASCII_HEAD catalogue into a list of {column: float} dicts.

    Raises InputError naming the source and line for malformed input.
    """
    columns = {}
    rows = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        if line.startswith("#"):
            parts = line[1:].split()
            if len(parts) < 2 or not parts[0].isdigit():
                raise InputError(f"{source}:{n}: bad column header {line.strip()!r}")
            columns[int(parts[0]) - 1] = parts[1]
            continue
        values = line.split()
        if len(values) < len(columns):
            raise InputError(f"{source}:{n}: {len(values)} values, header declares {len(columns)} columns")
        try:
            rows.append({name: float(values[i]) for i, name in columns.items()})
        except ValueError as e:
            raise InputError(f"{source}:{n}: not a number: {e}") from None
    names = set(columns.values())
    for need in ("X_IMAGE", "Y_IMAGE"):
        if need not in names:
            raise InputError(f"{source}: no {need} column (columns: {', '.join(sorted(names)) or 'none'})")
    return rows


def parse_truth(text, source="truth"):
    """Parse a truth CSV (x, y, flux columns) into a list of (x, y, flux)."""
    reader = csv.DictReader(text.splitlines())
    missing = {"x", "y", "flux"} - set(reader.fieldnames or [])
    if missing:
        raise InputError(f"{source}: missing column(s) {', '.join(sorted(missing))}")
    out = []
    for n, r in enumerate(reader, 2):
        try:
            out.append((float(r["x"]), float(r["y"]), float(r["flux"])))
        except (TypeError, ValueError):
            raise InputError(f"{source}:{n}: bad row {r}") from None
    return out


def match(truth, detections, radius):
    """Greedy one-to-one matching, brightest truth star first.

    truth: [(x, y, flux)], detections: [(x, y)]. Returns {truth index:
    (detection index, distance px)} for stars with a detection within radius.
    """
    used = set()
    found = {}
    for ti in sorted(range(len(truth)), key=lambda i: -truth[i][2]):
        tx, ty, _ = truth[ti]
        best = None
        for di, (dx, dy) in enumerate(detections):
            if di in used:
                continue
            d = math.hypot(dx - tx, dy - ty)
            if d <= radius and (best is None or d < best[1]):
                best = (di, d)
        if best is not None:
            used.add(best[0])
            found[ti] = best
    return found


def evaluate(truth, detections, radius=1.5, min_flux=1000.0, min_recovered=0.9, max_spurious_frac=0.1):
    """Apply the documented tolerance. Returns (passed, message)."""
    found = match(truth, detections, radius)
    bright = [i for i, t in enumerate(truth) if t[2] >= min_flux]
    recovered = [i for i in bright if i in found]
    near_any = sum(
        1 for dx, dy in detections if any(math.hypot(dx - tx, dy - ty) <= radius for tx, ty, _ in truth)
    )
    spurious = len(detections) - near_any
    allowed = max(2, math.floor(max_spurious_frac * len(detections)))
    offsets = sorted(found[i][1] for i in recovered)
    median = offsets[len(offsets) // 2] if offsets else float("nan")
    frac = len(recovered) / len(bright) if bright else 1.0
    summary = (
        f"{len(recovered)}/{len(bright)} stars with flux >= {min_flux:g} recovered within {radius:g} px "
        f"({100 * frac:.1f}%, need >= {100 * min_recovered:g}%), {spurious} spurious of {len(detections)} "
        f"detections (allowed {allowed}), median offset {median:.3f} px"
    )
    problems = []
    if not bright:
        problems.append(f"no truth star has flux >= {min_flux:g}: nothing to check")
    if frac < min_recovered:
        missed = [truth[i] for i in bright if i not in found][:5]
        problems.append("missed e.g. " + ", ".join(f"({x:.1f},{y:.1f} flux {f:.0f})" for x, y, f in missed))
    if spurious > allowed:
        problems.append(f"too many spurious detections ({spurious} > {allowed})")
    return (not problems, summary + ("" if not problems else "; " + "; ".join(problems)))


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("catalogue")
    p.add_argument("truth", nargs="?")
    p.add_argument("--radius", type=float, default=1.5, help="match radius, px")
    p.add_argument("--min-flux", type=float, default=1000.0, help="truth stars at least this bright must be found, ADU")
    p.add_argument("--min-recovered", type=float, default=0.9, help="fraction of those to recover")
    p.add_argument("--max-spurious-frac", type=float, default=0.1, help="of the detections")
    p.add_argument("--min-sources", type=int, help="no truth list: at least this many sources")
    a = p.parse_args(argv)
    if (a.truth is None) == (a.min_sources is None):
        p.error("give either TRUTH.csv or --min-sources N")
    try:
        with open(a.catalogue) as f:
            rows = parse_catalogue(f.read(), a.catalogue)
        detections = [(r["X_IMAGE"], r["Y_IMAGE"]) for r in rows]
        if a.truth is None:
            bad = [d for d in detections if d[0] <= 0 or d[1] <= 0]
            ok = len(detections) >= a.min_sources and not bad
            msg = f"{len(detections)} sources (need >= {a.min_sources}), {len(bad)} at non-positive pixel positions"
        else:
            with open(a.truth) as f:
                truth = parse_truth(f.read(), a.truth)
            ok, msg = evaluate(truth, detections, a.radius, a.min_flux, a.min_recovered, a.max_spurious_frac)
    except (OSError, InputError) as e:
        print(f"oracle: ERROR {e}", file=sys.stderr)
        return 2
    print(f"oracle: {'PASS' if ok else 'FAIL'} {a.catalogue}: {msg}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
