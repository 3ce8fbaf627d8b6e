"""SQL migrations of the commission schema, applied in file-name order by the runtime."""
