"""Task data: local and Hugging Face sources, the embedded corpus harvested from this machine,
its cache, and DeepBugs-style mutations."""
