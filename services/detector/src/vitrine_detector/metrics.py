from prometheus_client import Counter, Histogram

FRAMES = Counter(
    "vitrine_detector_frames_total",
    "Video frames by pipeline stage: decoded, sampled (chosen for detection), inferred",
    ["stage"],
)
VIDEOS = Counter(
    "vitrine_detector_videos_total",
    "Videos by outcome: processed, failed, skipped_no_consent, already_done",
    ["outcome"],
)
VIDEO_FAILURES = Counter(
    "vitrine_detector_video_failures_total", "Videos refused, by reason code", ["reason_code"]
)
VIDEO_PROCESSING_SECONDS = Histogram(
    "vitrine_detector_video_processing_seconds",
    "Wall time to process one video: fetch, decode, detect, track, store crops",
    buckets=(0.25, 0.5, 1, 2, 4, 8, 15, 30, 60, 120, 300, 600),
)
VIDEO_SECONDS = Counter(
    "vitrine_detector_video_seconds_total",
    "Seconds of video processed (rate over processing time: speed against real time)",
)
TRACKS = Counter(
    "vitrine_detector_tracks_total",
    "Tracked objects: published, or dropped (seen too briefly, no usable crop)",
    ["outcome"],
)
