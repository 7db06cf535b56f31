"""The naming layer: which component, translation layer or licence text a file is.

It works in two steps per file: :mod:`~licscan.identify.observe` reads what naming needs of the file's bytes once,
while they are held; :func:`~licscan.identify.catalog.name` names the file once, when its facts
(``licscan.binary``) and its enclosing distribution (``licscan.inventory``) are known (:mod:`~licscan.identify.examine`
says when). :mod:`~licscan.identify.catalog` names NVIDIA's parts from
``rules/catalog/nvidia.yaml`` (compiled by :mod:`~licscan.identify.catalog_table`, versions weighed by
:mod:`~licscan.identify.versions`), :mod:`~licscan.identify.signals` names layers that run CUDA on other GPUs from
``rules/catalog/translation-layers.yaml`` (compiled by :mod:`~licscan.identify.signal_table`; dynamic symbols read
by :mod:`~licscan.identify.dynsym`), :mod:`~licscan.identify.licensetext` recognises licence texts from
``rules/catalog/license-texts.yaml``; :mod:`~licscan.identify.owner` says which distribution owns a file and
:mod:`~licscan.identify.components` turns per-file matches into the inventory's components. Every literal the
catalog and the signals look for in a file is found in one pass over it (:class:`licscan.binary.probe.Literals`).
"""
