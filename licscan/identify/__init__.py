"""The naming layer: which component, translation layer or licence text a file is.

It runs after the walk, when a file's facts (``licscan.binary``), its bytes and its enclosing distribution
(``licscan.inventory``) are known: :mod:`~licscan.identify.catalog` names NVIDIA's parts from
``rules/catalog/nvidia.yaml``, :mod:`~licscan.identify.signals` names layers that run CUDA on other GPUs from
``rules/catalog/translation-layers.yaml``, :mod:`~licscan.identify.licensetext` recognises licence texts from
``rules/catalog/license-texts.yaml``.
"""
