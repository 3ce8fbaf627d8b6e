"""Vitrine detector: turns `video.uploaded` into one `objects.detected` per tracked object.

Fetch from the media store, decode (PyAV), sample frames adaptively, detect in batches
(ultralytics YOLO), track across samples, keep each track's best crops.
"""
