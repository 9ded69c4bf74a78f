"""Built-in tasks; each names its input and output, languages, data sources and metrics."""
