"""SQL migrations, applied in file-name order by the runtime."""
