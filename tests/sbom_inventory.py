"""A fixed, realistic inventory for the SBOM tests: a dist holding NVIDIA's nvidia-cuda-runtime 13.0.96 wheel and
our fixture app wheel (licscan_test, whose libkern.so carries CUDA 13.0 device code). The device code, ELF facts
and digests of libkern.so are real (inspected from tests/fixtures/cuda13/libkern.so); cudart's bytes are not in
the repository, so its facts are written out and its digests derived from a fixed string."""

from __future__ import annotations

import dataclasses
import hashlib

from helpers import fixture

from licscan.binary.inspect import inspect_file
from licscan.findings import Clause, Finding, Severity, Verdict
from licscan.inventory.items import Distribution, Ecosystem
from licscan.model import (
    Component,
    ComponentKind,
    Confidence,
    ElfFacts,
    FileFacts,
    FileFormat,
    Inventory,
    Summary,
    VersionSource,
)
from licscan.scan import FileRecord

RUNTIME_WHEEL = "dist/nvidia_cuda_runtime-13.0.96-py3-none-manylinux_2_27_x86_64.whl"
APP_WHEEL = "dist/licscan_test-0.0.1-py3-none-linux_x86_64.whl"
CUDART = f"{RUNTIME_WHEEL}!/nvidia/cu13/lib/libcudart.so.13"
LIBKERN = f"{APP_WHEEL}!/licscan_test/libkern.so"


def _fake_digests(label: str) -> tuple[str, str]:
    data = f"licscan sbom test bytes: {label}".encode()
    return hashlib.sha1(data).hexdigest(), hashlib.sha256(data).hexdigest()


def build(extra_components=(), extra_records=()):
    """(inventory, records, digests) for the fixed dist."""
    raw = fixture("cuda13/libkern.so").read_bytes()
    kern_digests = (hashlib.sha1(raw).hexdigest(), hashlib.sha256(raw).hexdigest())
    facts = inspect_file(str(fixture("cuda13/libkern.so")), display=LIBKERN)
    facts = dataclasses.replace(facts, device_code=tuple(dataclasses.replace(i, path=LIBKERN)
                                                         for i in facts.device_code))
    cudart_facts = FileFacts(CUDART, FileFormat.ELF, 754_776, elf=ElfFacts(
        "ET_DYN", "EM_X86_64", "libcudart.so.13", ("libm.so.6", "libdl.so.2", "libc.so.6"), (), (), True, None))
    cudart_digests = _fake_digests("libcudart.so.13")
    records = [
        FileRecord(CUDART, cudart_facts.size, (RUNTIME_WHEEL,), cudart_facts, (), cudart_digests[1]),
        FileRecord(LIBKERN, facts.size, (APP_WHEEL,), facts, (), None),
        *extra_records,
    ]
    digests = {CUDART: cudart_digests, LIBKERN: kern_digests}
    for record in extra_records:
        digests[record.vpath] = _fake_digests(record.vpath)
    runtime = Distribution(
        vpath=RUNTIME_WHEEL, ecosystem=Ecosystem.PYPI, name="nvidia-cuda-runtime", version="13.0.96",
        scope=RUNTIME_WHEEL, license_declared="LicenseRef-NVIDIA-Proprietary",
        license_files=(f"{RUNTIME_WHEEL}!/nvidia_cuda_runtime-13.0.96.dist-info/License.txt",),
        metadata=(("Summary", "CUDA Runtime native Libraries"), ("Author", "Nvidia CUDA Installer Team")))
    app = Distribution(vpath=APP_WHEEL, ecosystem=Ecosystem.PYPI, name="licscan-test", version="0.0.1",
                       scope=APP_WHEEL,
                       metadata=(("Summary", "licscan test fixture (libkern.so from tests/fixtures/src/kern.cu)"),))
    cudart = Component(
        id="sdk-library:nvidia/cudart@13.0.96", name="cudart", vendor="NVIDIA", kind=ComponentKind.SDK_LIBRARY,
        version="13.0.96", license="LicenseRef-NVIDIA-CUDA-EULA", paths=(CUDART,),
        evidence=("file name 'libcudart.so.13' matches CUDA Runtime (rules/catalog/nvidia.yaml: cudart)",
                  "SONAME 'libcudart.so.13' matches CUDA Runtime (rules/catalog/nvidia.yaml: cudart)",
                  "declared: LicenseRef-NVIDIA-Proprietary (by nvidia-cuda-runtime 13.0.96)",
                  "wheel METADATA Version: 13.0.96 of nvidia-cuda-runtime"),
        distributions=("nvidia-cuda-runtime",), distribution_version="13.0.96", confidence=Confidence.HIGH,
        version_sources=(VersionSource.DISTRIBUTION,), licenses_declared=("LicenseRef-NVIDIA-Proprietary",))
    dist_components = (
        Component("python-distribution:pypi/nvidia-cuda-runtime@13.0.96", "nvidia-cuda-runtime", "NVIDIA",
                  ComponentKind.PYTHON_DISTRIBUTION, "13.0.96", "LicenseRef-NVIDIA-Proprietary", (RUNTIME_WHEEL,),
                  (f"{RUNTIME_WHEEL}: Name: nvidia-cuda-runtime, Version: 13.0.96",)),
        Component("python-distribution:pypi/licscan-test@0.0.1", "licscan-test", "",
                  ComponentKind.PYTHON_DISTRIBUTION, "0.0.1", None, (APP_WHEEL,),
                  (f"{APP_WHEEL}: Name: licscan-test, Version: 0.0.1",)),
    )
    components = tuple(sorted((cudart, *dist_components, *extra_components),
                              key=lambda c: (c.kind.value, c.name, c.version or "", c.id)))
    inventory = Inventory(
        inputs=("dist",), components=components, device_code=facts.device_code, diagnostics=(),
        summary=Summary(files=7, bytes=cudart_facts.size + facts.size + 1_000, diagnostics=0),
        distributions=(app, runtime))
    return inventory, records, digests.get


FINDINGS = [Finding(
    rule="CUDA-EULA-ATTACH-A", title="Attachment A", severity=Severity.NOTE, verdict=Verdict.VIOLATION, path=CUDART,
    component=None, message="libcudart.so.13 is listed in Attachment A (redistributable)", remediation="",
    clause=Clause(document="CUDA EULA (2021-10-08)", section="Attachment A", text="CUDA Runtime ...",
                  date="2021-10-08"),
    evidence=("SONAME libcudart.so.13",), fingerprint="0123456789abcdef")]
