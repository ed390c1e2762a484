"""Every decoder backend against the GIF conformance suites vendored in tests/data/gif-conformance.

pygif (robert-ancell/pygif test-suite, 84 cases): each ``<name>.conf`` gives the screen size,
loop count and, per frame, the expected RGBA pixels (``.rgba`` or ``.png``) and delay in
1/100 s. A case passes when the frame count and size match, every *opaque* expected pixel
matches exactly (pygif's own runner ignores pixels that are transparent in the reference),
the delays match where given and the loop count matches (``infinite`` = NETSCAPE 0 -> 0;
``0`` = no loop block -> ``None``). A case with no frames listed (invalid data the suite only
requires not to crash) passes on any clean outcome: frames or a :class:`GifDecodeError`.

peterdn (gif-test-suite, 13 GIFs made by ImageMagick): expected coalesced frames are
``frames/<name>-<k>.png``; delays and loop counts are those of its ``generate_gifs.sh``
(``-delay 100`` -> 1000 ms, one 10 -> 100 ms; ``-loop 0`` -> 0, ``-loop 1`` writes no block).

Cases we fail on purpose are in ``XFAIL`` with the reason (strict, so a fix shows up). The
pass counts per backend and suite are printed at the end of the module.
"""

from __future__ import annotations

import configparser
from pathlib import Path

import numpy as np
import pytest

from gifemo.data.decode import BACKENDS, GifDecodeError, decode

SUITES = Path(__file__).resolve().parent / "data" / "gif-conformance"  # see its README (licences)
PYGIF, PETERDN = SUITES / "pygif", SUITES / "peterdn"

_NO_PIXELS = ("policy: a GIF that holds no pixel data is reported as a bad file "
              "(GifDecodeError) instead of being rendered as one blank frame")
XFAIL = {  # (suite, case) -> reason; the same for every backend
    ("pygif", "no-data"): _NO_PIXELS + " (no image block at all)",
    ("pygif", "image-zero-width"): _NO_PIXELS + " (0-wide image, file ends inside its block)",
    ("pygif", "image-zero-height"): _NO_PIXELS + " (0-high image, file ends inside its colour table)",
    ("pygif", "image-zero-size"): _NO_PIXELS + " (0x0 image, file ends inside its colour table)",
    ("pygif", "gif87a-animation"): (
        "needs readers' 'force animation' heuristic: 4 images with no graphic-control or loop "
        "block are one composed picture by the spec (pygif's runner skips this case); the same "
        "structure in images-overlap must stay one frame, so we follow the spec"),
}


N_PYGIF, N_PETERDN = 84, 13  # cases in the vendored suites


def _pygif_cases() -> list[str]:
    """The case names of pygif's TESTS file (missing suite: collection fails, never skips)."""
    return (PYGIF / "TESTS").read_text().split()


def _peterdn_cases() -> list[str]:
    return sorted(p.stem for p in PETERDN.glob("*.gif"))


def _params():
    params = []
    for suite, names in (("pygif", _pygif_cases()), ("peterdn", _peterdn_cases())):
        for name in names:
            for backend in BACKENDS:
                reason = XFAIL.get((suite, name))
                marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
                params.append(pytest.param(backend, suite, name, marks=marks,
                                           id=f"{backend}-{suite}-{name}"))
    return params


PARAMS = _params()
_results: dict[tuple[str, str], list[bool]] = {}


@pytest.fixture(scope="module", autouse=True)
def _report_pass_counts(request):
    """Print ``<backend> <suite> passed/total`` once the module's tests have run."""
    yield
    if not _results:
        return
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    lines = [f"{b} {s} {sum(r)}/{len(r)}" for (b, s), r in sorted(_results.items())]
    text = "decode conformance: " + ", ".join(lines)
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is None or capture is None:  # pragma: no cover - pytest without these plugins
        print(text)
        return
    with capture.global_and_fixture_disabled():  # shown even while output is captured
        reporter.write_line("")
        reporter.write_line(text)


def _rgba(path: Path, height: int, width: int) -> np.ndarray:
    if path.suffix == ".rgba":
        return np.fromfile(path, np.uint8).reshape(height, width, 4)
    from PIL import Image

    return np.asarray(Image.open(path).convert("RGBA"))


def _pygif_expected(name: str):
    conf = configparser.ConfigParser()
    conf.read(PYGIF / f"{name}.conf")
    c = conf["config"]
    width, height = int(c["width"]), int(c["height"])
    frames = []
    for key in (k.strip() for k in c["frames"].split(",")):
        if key:
            sec = conf[key]
            ref = PYGIF / (sec.get("pixels") or sec["image"]).strip()
            delay = int(sec["delay"]) * 10 if "delay" in sec else None
            frames.append((_rgba(ref, height, width), delay))
    loop = c["loop-count"].strip()
    loop = 0 if loop == "infinite" else (None if loop == "0" else int(loop))
    return PYGIF / c["input"].strip(), frames, loop


def _peterdn_expected(name: str):
    from PIL import Image

    refs = sorted((PETERDN / "frames").glob(f"{name}-*.png"), key=lambda p: int(p.stem.rsplit("-", 1)[1]))
    refs = refs or [PETERDN / "frames" / f"{name}.png"]
    n = len(refs)
    delays = [0] if n == 1 else [1000, 1000, 100, 1000] if "variable_delay" in name else [1000] * n
    frames = [(np.asarray(Image.open(p).convert("RGBA")), d) for p, d in zip(refs, delays)]
    return PETERDN / f"{name}.gif", frames, (0 if name.endswith("_loop") or "_loop_" in name else None)


def _problems(frames, expected, loop) -> list[str]:
    problems = []
    if len(frames.rgb) != len(expected):
        return [f"{len(frames.rgb)} frames, expected {len(expected)}"]
    if frames.delays_ms.shape != (len(expected),):
        problems.append(f"delays_ms shape {frames.delays_ms.shape}")
    for k, (ref, delay) in enumerate(expected):
        if frames.rgb[k].shape != ref.shape[:2] + (3,):
            return problems + [f"frame {k} is {frames.rgb[k].shape}, expected {ref.shape[:2]}"]
        opaque = ref[..., 3] > 0
        wrong = int((frames.rgb[k][opaque] != ref[..., :3][opaque]).any(-1).sum())
        if wrong:
            problems.append(f"frame {k}: {wrong} opaque pixels differ")
        if delay is not None and frames.delays_ms[k] != delay:
            problems.append(f"frame {k}: delay {frames.delays_ms[k]} ms, expected {delay}")
    if frames.loop != loop:
        problems.append(f"loop {frames.loop!r}, expected {loop!r}")
    return problems


def test_the_vendored_suites_are_complete():
    """Every case of both suites is here (a lost file must fail the run, not shrink it)."""
    assert len(_pygif_cases()) == N_PYGIF and len(_peterdn_cases()) == N_PETERDN
    assert (PYGIF / "LICENSE").is_file() and (PETERDN / "LICENSE").is_file()
    assert len(PARAMS) == (N_PYGIF + N_PETERDN) * len(BACKENDS)
    for name in _pygif_cases():
        assert (PYGIF / f"{name}.conf").is_file(), name


@pytest.mark.parametrize("backend,suite,name", PARAMS)
def test_conformance_case(backend, suite, name):
    path, expected, loop = (_pygif_expected if suite == "pygif" else _peterdn_expected)(name)
    result = _results.setdefault((backend, suite), [])
    try:
        frames = decode(path, backend)
    except GifDecodeError as e:
        assert str(path) in str(e)
        ok = not expected  # "must not crash" cases: a typed error is a clean outcome
        result.append(ok)
        assert ok, f"GifDecodeError: {e.reason}"
        return
    problems = _problems(frames, expected, loop) if expected else []
    result.append(not problems)
    assert not problems, "; ".join(problems)


@pytest.mark.parametrize("path", sorted(PYGIF.glob("*.gif")) + sorted(PETERDN.glob("*.gif")),
                         ids=lambda p: f"{p.parent.name}-{p.stem}")
def test_backends_agree(path):
    """All backends give identical frames, delays and loop (or all raise) on every case."""
    outcomes = []
    for backend in BACKENDS:
        try:
            f = decode(path, backend)
            outcomes.append((f.rgb, f.delays_ms.tolist(), f.loop))
        except GifDecodeError:
            outcomes.append(None)
    first = outcomes[0]
    for backend, other in zip(BACKENDS[1:], outcomes[1:]):
        if first is None or other is None:
            # only invalid LZW data may split the backends (each library's own tolerance)
            assert (first is None) == (other is None) or path.stem in _LZW_TOLERANCE, backend
            continue
        assert np.array_equal(first[0], other[0]), f"{backend} frames differ from {BACKENDS[0]}"
        assert first[1:] == other[1:], backend


_LZW_TOLERANCE = {"invalid-code"}  # Pillow rejects the out-of-table code; FFmpeg decodes on
