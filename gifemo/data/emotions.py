"""The 17 GIFGIF emotions and the paper's Table 1 tags (Chen & Picard 2017, §3.2, Table 1).

Order matters: it is the column order of every label matrix, head and checkpoint.
"""

EMOTIONS: tuple[str, ...] = (
    "amusement", "anger", "contempt", "contentment", "disgust", "embarrassment",
    "excitement", "fear", "guilt", "happiness", "pleasure", "pride", "relief",
    "sadness", "satisfaction", "shame", "surprise",
)

# Tags the paper struck through in Table 1 as generic (sources, not emotions).
GENERIC_TAGS: frozenset[str] = frozenset({
    "tv", "movies", "movie", "anime", "cartoons & comics", "cartoon", "reaction",
    "giphytrending", "animals",
})

# Table 1 as printed (sorted by frequency, generic tags included).
TABLE1_TAGS: dict[str, tuple[str, ...]] = {
    "amusement": ("laughing", "happy", "laugh", "excited", "smile", "lol", "tv", "dancing",
                  "exciting", "movies", "funny", "smiling"),
    "anger": ("angry", "movies", "tv", "frustrated", "cartoons & comics", "funny", "hate",
              "anger", "anime", "mad", "movie", "upset", "no", "rage", "annoyed"),
    "contempt": ("angry", "tv", "eye roll", "no", "frustrated", "smh", "movies", "unimpressed",
                 "annoyed", "confused", "reaction", "suspicious", "smdh"),
    "contentment": ("happy", "smile", "dancing", "excited", "laughing", "animals", "cute",
                    "smiling", "cartoons & comics", "movies", "thumbs up", "tv", "funny",
                    "baby", "laugh"),
    "disgust": ("no", "tv", "movies", "angry", "disgusted", "eye roll", "confused",
                "frustrated", "shocked", "smh", "gross", "reaction", "scared"),
    "embarrassment": ("facepalm", "tv", "awkward", "embarrassed", "frustrated", "nervous",
                      "embarassed", "funny", "movies", "cartoons & comics", "sad", "annoyed",
                      "cartoon", "disappointed"),
    "excitement": ("happy", "excited", "exciting", "dancing", "tv", "laughing", "funny",
                   "cartoons & comics", "laugh", "reaction", "smile", "adventure time", "cute"),
    "fear": ("scared", "shocked", "movies", "cat", "nervous", "cartoons & comics", "tv",
             "surprised", "screaming", "animals", "funny", "reaction", "lol", "scream",
             "terrified"),
    "guilt": ("sad", "movies", "crying", "tv", "nervous", "cartoons & comics", "facepalm",
              "embarrassed", "sorry", "cartoon", "cry", "disappointed", "movie", "awkward",
              "pout"),
    "happiness": ("happy", "laughing", "excited", "laugh", "tv", "smile", "dancing", "movies",
                  "exciting", "lol", "funny", "cartoons & comics", "smiling"),
    "pleasure": ("happy", "excited", "laughing", "smile", "tv", "laugh", "dancing", "exciting",
                 "funny", "movies", "cute", "love", "cartoons & comics"),
    "pride": ("happy", "tv", "excited", "yes", "dancing", "smile", "movies", "smiling",
              "sports", "exciting", "laughing", "thumbs up", "cartoons & comics", "celebration"),
    "relief": ("happy", "smile", "movies", "excited", "giphytrending", "laughing", "yes",
               "sigh", "smiling", "exciting", "cartoons & comics", "animals", "cute",
               "jennifer lawrence"),
    "sadness": ("sad", "crying", "movies", "tv", "cry", "disappointed", "upset", "sadness",
                "tears", "anime", "cartoons & comics", "love", "pout", "movie", "cartoon",
                "disney", "frustrated"),
    "satisfaction": ("happy", "excited", "tv", "dancing", "laughing", "smile", "exciting",
                     "smiling", "cartoons & comics", "funny", "movies", "thumbs up", "yes"),
    "shame": ("sad", "facepalm", "tv", "movies", "crying", "frustrated", "disappointed",
              "embarrassed", "nervous", "cartoons & comics", "embarassed", "sorry", "awkward"),
    "surprise": ("shocked", "scared", "surprised", "tv", "excited", "reaction", "movies",
                 "happy", "funny", "omg", "exciting", "cat", "confused"),
}

# Two groups the paper's clustered MTL finds (k = 2, Fig. 6): positive vs negative valence.
POSITIVE_GROUP: tuple[str, ...] = (
    "amusement", "contentment", "excitement", "happiness", "pleasure", "pride", "relief",
    "satisfaction",
)
NEGATIVE_GROUP: tuple[str, ...] = tuple(e for e in EMOTIONS if e not in POSITIVE_GROUP)


def emotion_index(name: str) -> int:
    """Column of ``name`` in every label matrix; ValueError naming the valid emotions."""
    try:
        return EMOTIONS.index(name.strip().lower())
    except ValueError:
        raise ValueError(f"unknown emotion {name!r}; expected one of {', '.join(EMOTIONS)}") from None
