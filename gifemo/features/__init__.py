"""Stage 1: frozen-C3D features per GIF and their on-disk cache (paper §3.3).

``ensure_visual_features(manifest, cache_dir, backbone, clips, decode) -> FeatureTable``
builds the cache or reuses it; see :mod:`gifemo.features.extract`. The names below are
imported on first use, so ``gifemo.features.cache`` and friends load without Lightning.
"""
_EXPORTS = ("BackboneConfig", "ClipConfig", "DecodeConfig", "FeatureTable", "RunConfig",
            "ensure_visual_features")
__all__ = list(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        from gifemo.features import extract
        return getattr(extract, name)
    raise AttributeError(f"module 'gifemo.features' has no attribute {name!r}")
