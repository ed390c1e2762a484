"""Semi-automatic collection (paper §3.2, §4): a labelling web app over ranked candidates.

Modules: ``db`` (SQLite, WAL, transactions), ``access`` (tokens), ``pool`` (candidate pools),
``scoring`` (the seam to the model side: checkpoint scores and re-ranking refits),
``campaigns``, ``labelling`` (queue and answers), ``consensus`` (two labellers, third on
disagreement), ``votes`` (pairwise votes), ``rerank``, ``replay`` (looks saved), ``export``,
``app`` (FastAPI), ``cli`` (``scripts/collect.py``), ``demo`` (synthetic and demo campaigns).
The web dependencies (FastAPI, Jinja2, uvicorn) are needed only by ``app`` and ``cli serve``.
"""
