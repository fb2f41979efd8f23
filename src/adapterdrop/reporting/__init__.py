"""The reporting layer: result files -> tables and figures, from stored results only.

Nothing in this layer measures or trains: it reads the result files under ``results/``
(schema: :mod:`adapterdrop.results`) and the tables built from them, so every table and figure
can be rebuilt on any machine, without the hardware that measured it.

* :mod:`adapterdrop.reporting.collect`: every result file (each machine's ``raw/`` folders and
  the training results in ``results/raw``) in one tidy table with its provenance,
  schema-checked, written to ``results/results.csv`` by ``make tables``;
* :mod:`adapterdrop.reporting.figures`: small plotting functions, one per artefact, drawn from
  the built tables (``results/<machine>/tables/*.csv``, ``results/tables/*.csv``), with
  :mod:`adapterdrop.reporting.baselines` (the majority-class baseline of a task's dev split);
* :mod:`adapterdrop.reporting.notebooks`: runs ``notebooks/*.ipynb`` headless (``make
  figures``), each writing its PNG and PDF to ``results/figures/``.

``collect``, ``figures`` and ``notebooks`` import neither torch nor the models, so a figure is
quick to redraw.
"""
