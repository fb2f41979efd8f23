"""The reporting layer: result files -> tables and figures, from stored results only.

Nothing in this layer measures or trains: it reads the result files under ``results/``
(schema: :mod:`adapterdrop.results`) and the tables built from them, so every table and figure
can be rebuilt on any machine, without the hardware that measured it.

Tables (``python -m adapterdrop.reporting``, :mod:`adapterdrop.reporting.__main__`, which
``make tables`` runs):

* :mod:`adapterdrop.reporting.benchmarks`: a benchmark grid's tables from its results and the
  manifest beside them (``<grid>.run.json``), variants of other settings, every machine's
  tables, and the comparison of machines; ``bench.sweep`` calls it after measuring;
* ``table1``, ``table2``, ``table3``, ``efficiency`` (with ``efficiency_drop``, ``_coda``,
  ``_overheads``, ``_multitask``): each grid's ``tables(df, cfg)`` builders, the papers' values
  they set beside ours, and ``COMPARISON`` (the columns compared across machines);
* the training artefacts' tables from their results (``results/raw/<experiment>``):
  :mod:`adapterdrop.reporting.fig2` (Fig. 2), ``fusion`` (AdapterFusion pruning and
  fusion-AdapterDrop), ``sharing`` (cross-layer sharing) and ``methods`` (the methods frontier),
  with :mod:`adapterdrop.reporting.baselines` (the majority class, a task's main score);
* :mod:`adapterdrop.reporting.tables` (load the valid results, write ``.md`` and ``.csv``) and
  :mod:`adapterdrop.reporting.cells` (cells read from a flattened result row).

The grid tables read a few constants of their grid (``bench.experiments.<grid>``) and the
model's layer count, so they import torch; no reporting module imports what measures or trains
(``tests/test_architecture.py``).

Results and figures:

* :mod:`adapterdrop.reporting.collect`: every result file (each machine's ``raw/`` folders and
  the training results in ``results/raw``) in one tidy table with its provenance,
  schema-checked, written to ``results/results.csv`` by the same entry point, last;
* :mod:`adapterdrop.reporting.figures`: small plotting functions, one per artefact, drawn from
  the built tables (``results/<machine>/tables/*.csv``, ``results/tables/*.csv``);
* :mod:`adapterdrop.reporting.notebooks`: runs ``notebooks/*.ipynb`` headless (``make
  figures``), each writing its PNG and PDF to ``results/figures/``.

``collect``, ``figures`` and ``notebooks`` import neither torch nor the models, so a figure is
quick to redraw.
"""
