"""A small synthetic stand-in for GIFGIF+ with a known structure (for `make demo`, tests, benchmarks).

The real data cannot be shipped, so the demo generates a dataset folder in the manifest format
(``manifest.csv`` + ``votes.csv``, see :mod:`gifemo.data.manifest`) whose statistics follow the
paper where it reports them, and whose ground truth is written beside it (``demo_truth.json``):

* **GIF files** (``gifs/``): real animated GIFs written by Pillow's GIF encoder: 80–320 px per
  side, frame counts long-tailed from 2 to ~350 with most between 10 and 60 (Fig. 9), per-frame
  delays including 0 and 10 ms (never 0 mixed with non-zero in one GIF, see :func:`_delays`),
  variable delays and held last frames, looping or not,
  interlaced or not, and four encodings seen in the wild: full frames, transparent delta
  frames with per-frame palettes (``optimize``), transparent "stickers" restored to the
  background (disposal 2), and opaque frames with disposal 2.
* **Latent emotions** (§3.1): per GIF a valence ``v`` and an arousal ``a`` factor, two group
  factors ``f_pos = 0.8 v + 0.6 z_pos`` and ``f_neg = -0.8 v + 0.6 z_neg`` and one factor
  per emotion. Each of the 17 true scores is a noisy linear function of them,
  ``s_e = 0.7 f_group(e) + alpha_e a + 0.55 u_e + flag effects`` (standardised), so emotions of
  :data:`POSITIVE_GROUP` correlate with each other, those of :data:`NEGATIVE_GROUP` likewise,
  and the two groups anti-correlate: the k = 2 structure the paper's clustered model finds
  (Fig. 6).
* **Pictures** carry part of that signal: the hue and brightness of the moving shapes follow
  valence (warm and bright vs. cold and dark), their speed, amplitude, camera pan and shake
  follow arousal; sizes, counts, background hues, textures, scene cuts and the cartoon style
  are nuisance. The signal is coarse colour and motion on purpose, so that even a frozen
  random-weight C3D (mean-pooled fc6) keeps some of it.
* **Tags** (§3.4): each GIF draws tags from the Table 1 lists of the emotions it expresses
  (probability ``sigmoid(3 d - 3.5)`` with ``d`` the standardised ``s_e + 0.3 u_e``, so each
  emotion keeps some tags of its own inside its group; tags weighted by their printed
  frequency order), generic tags (tv, movies, cartoons & comics …)
  at realistic rates, neutral topic tags, and a long Zipf tail of random words that mostly stay
  under the 0.5 % vocabulary threshold; a few tags are capitalised, as users type them.
* **Votes** (§3.1): per emotion only part of the GIFs is ever compared (so masks matter);
  random pairs of those are judged "which GIF expresses E more" by a Bradley–Terry (logistic)
  choice on a saturating intensity ``t = 10 * sigmoid(2.5 (s - 0.15))`` of the true score,
  with "neither" more likely when both GIFs are weak. With ~28 comparisons per GIF and emotion
  (GIFGIF had 3.1 M votes for 6,119 GIFs × 17 emotions, ≈30) TrueSkill's ``y = mu - 3 sigma``
  exceeds 25 for roughly a quarter of the labelled GIFs, the paper's base rate.
* **Flags** (Fig. 10): ``cartoon`` (≈22 %, raises amusement, excitement, surprise) and
  ``multi_scene`` (≈35 %, a scene cut plus a second character; raises surprise and
  embarrassment).

Everything is a function of ``seed`` alone: the same seed gives byte-identical files whatever
the number of worker processes (each GIF is rendered from its own spec and its own
``SeedSequence`` child). GIFs are rendered straight into palette indices, so Pillow never
quantises; that and two worker processes keep 600 GIFs well under a minute on two cores.

The package is split by part: :mod:`.latents`, :mod:`.tags`, :mod:`.votes`, :mod:`.render`
and :mod:`.dataset` (the folder writer).
"""
from gifemo.data.demo.dataset import (
                                      GENERATOR_VERSION,
                                      GIF_DIR,
                                      TRUTH_FILE,
                                      DemoExistsError,
                                      demo_is_current,
                                      demo_params,
                                      generate_demo,
                                      read_truth,
                                      truth_scores,
)
from gifemo.data.demo.latents import Latents, sample_latents
from gifemo.data.demo.render import GifSpec, render_frames, sample_gif_specs, write_gif
from gifemo.data.demo.tags import sample_tags
from gifemo.data.demo.votes import sample_votes

__all__ = ["GENERATOR_VERSION", "GIF_DIR", "TRUTH_FILE", "DemoExistsError", "GifSpec", "Latents",
           "demo_is_current", "demo_params", "generate_demo", "read_truth", "render_frames",
           "sample_gif_specs", "sample_latents", "sample_tags", "sample_votes", "truth_scores",
           "write_gif"]
