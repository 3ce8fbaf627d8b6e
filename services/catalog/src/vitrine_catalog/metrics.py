from prometheus_client import Counter, Histogram

MATCH_DECISIONS = Counter(
    "vitrine_match_decisions_total", "Tracked objects judged by the matcher", ["outcome"]
)
MATCH_SCORE = Histogram(
    "vitrine_match_score",
    "Score of accepted matches (mean cosine over a track's crops)",
    buckets=(0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 1.0),
)
MATCH_CONFIDENCE = Histogram(
    "vitrine_match_confidence",
    "The verifier's confidence in every judged track's best product (MATCH_RULE=verifier):"
    " a shift of this distribution is new kinds of video or catalog, not yet fitted for",
    buckets=(0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0),
)
REMATCH_DECISIONS = Counter(
    "vitrine_rematch_decisions_total",
    "Stored tracks judged again because a product was added",
    ["outcome"],
)
STALE_VECTOR_HITS = Counter(
    "vitrine_stale_vector_hits_total",
    "Search hits skipped because another embedding model made their vector",
)
