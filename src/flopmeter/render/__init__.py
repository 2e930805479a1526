"""Report -> text tree, table, JSON, CSV, Markdown, HTML, plots."""
