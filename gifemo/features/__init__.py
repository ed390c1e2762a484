"""Stage 1: frozen-backbone features per GIF and their on-disk cache (paper §3.3).

``ensure_visual_features(manifest, cache_dir, backbone, clips, decode) -> FeatureTable``
builds the cache or reuses it; see :mod:`gifemo.features.visual_features`. The names below
are imported on first use, so ``gifemo.features.cache`` and friends load without Lightning.
"""
_EXPORTS = ("ClipConfig", "DecodeConfig", "FeatureTable", "RunConfig", "ensure_visual_features")
__all__ = list(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        from gifemo.features import visual_features
        return getattr(visual_features, name)
    raise AttributeError(f"module 'gifemo.features' has no attribute {name!r}")
