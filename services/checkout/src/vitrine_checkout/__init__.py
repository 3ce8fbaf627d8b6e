"""Vitrine checkout: places paid orders against reserved stock, refunds them, and announces
both as `order.placed` / `order.refunded` through the transactional outbox."""
