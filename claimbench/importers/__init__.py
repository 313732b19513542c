"""Importers of published training data into claimbench trial frames, which the claim kinds and figures then
judge and draw as they do a claimbench run: ``shallue`` (Shallue et al. 2018, google-research/batch_science)."""
