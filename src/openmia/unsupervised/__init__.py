"""Learning without labels: clustering embeddings (``cluster``), cluster stability (``stability``),
patient profiles (``profiles``) and their reports (``report``). Embeddings come from
:mod:`openmia.engine.embed`. Nothing here imports torch."""
