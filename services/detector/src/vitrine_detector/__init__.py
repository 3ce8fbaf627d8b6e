"""Vitrine detector: turns `video.uploaded` into one `objects.detected` per tracked object.

Not built yet (issue 3). Until then the demo and the cross-service tests publish
`objects.detected` themselves, from crops of real product photos.
"""
