from prometheus_client import Counter, Histogram

MATCH_DECISIONS = Counter(
    "vitrine_match_decisions_total", "Tracked objects judged by the matcher", ["outcome"]
)
MATCH_SCORE = Histogram(
    "vitrine_match_score",
    "Score of accepted matches (mean cosine over a track's crops)",
    buckets=(0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 1.0),
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
