"""Reference implementations our engine is checked against and benchmarked with.

``adapterhub`` builds an AdapterHub (``adapters``) peer of an encoder's bottleneck tasks from
their method configs; ``adapterhub_fusion`` adds AdapterHub's ``Fuse`` for a fusion task. The
reference sits above the engine and the methods: it reads ``encoder.modules_of`` and
``encoder.method_of``, and nothing below imports it.
"""
