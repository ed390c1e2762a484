"""Stage 1: frozen-C3D features per GIF and their on-disk cache (paper §3.3).

``ensure_visual_features(manifest, cache_dir, backbone, clips, decode) -> FeatureTable``
builds the cache or reuses it; see :mod:`gifemo.features.extract`.
"""
from gifemo.features.extract import (
    BackboneConfig,
    ClipConfig,
    DecodeConfig,
    FeatureTable,
    RunConfig,
    ensure_visual_features,
)

__all__ = ["BackboneConfig", "ClipConfig", "DecodeConfig", "FeatureTable", "RunConfig",
           "ensure_visual_features"]
