"""Walking inputs: folders, archives (zip/wheel/egg, tar.*, ar/.deb, conda) and container images (OCI layouts,
docker-save tarballs), nested to a configurable depth, within limits against bombs (docs/architecture.md).

Contract (used by licscan/scan.py): ``walk(paths, limits) -> Iterator[FileBlob | SpecialFile | Distribution |
Diagnostic]`` -- see licscan/inventory/items.py. Nothing in the scanned tree is modified, executed or followed out
of the tree; spooled members go to a private temporary folder that is removed afterwards.
"""
