"""adapterdrop: reproduce and benchmark the efficiency of adapters in transformers.

Layers: ``core`` <- ``methods`` and ``engine`` (the adapter encoder); ``train`` and ``bench``
measure, writing result files (:mod:`adapterdrop.results`); ``reporting`` builds every table
and figure from those files only (``python -m adapterdrop.reporting``).

Glossary of dropped layers. ``n`` is always a count of the lowest transformer layers (0..L-1)
that run without a task's adapter; it goes by several names because some of them are config
keys hashed into result ids (renaming those would change every stored point):

* ``dropped_layers`` (engine forward argument, an int or a task -> int mapping): dynamic
  AdapterDrop, at run time: the task's modules in layers ``< n`` are skipped, not removed.
* ``leave_out`` (``method.leave_out``, a method option): static (specialized) AdapterDrop: the
  method builds no module in layers ``< leave_out``; for fusion, no fusion layer there.
  AdapterHub's own ``leave_out`` is a list of layer indices (:mod:`adapterdrop.reference`
  converts), and its ``skip_layers`` is its run-time counterpart of ``dropped_layers``.
* ``drop.n`` (training config): the ``n`` of a training run: ``drop.mode=specialized`` sets
  ``method.leave_out = n``, ``dynamic`` drops ``n`` layers at run time in training and
  evaluation; ``drop.eval_n`` is the depth evaluated, ``drop.max_n`` robust AdapterDrop's
  largest draw (``n ~ U{0..max_n}`` per batch).
* ``bench.dropped_layers`` (Table 2) and ``bench.specialized.dropped_layers`` (efficiency):
  the ``n`` values a benchmark grid times (``all``, ``spread`` or a list), run-time drops in
  Table 2 and ``leave_out`` values in the specialized study; ``bench.robust.max_n`` as above.
* In result names and tables: metrics ``val/<metric>@n=<k>``, callables ``ours@n=<k>`` and
  ``n<k>``, tasks ``leave<k>``, and the ``dropped_layers`` column are all this ``n``.
"""

from adapterdrop.config import register_resolvers

__version__ = "0.1.0"

register_resolvers()  # the ${adapterdrop.*} interpolations of conf/
