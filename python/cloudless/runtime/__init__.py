"""Run function packages: package format, compiled-module cache and the Wasm runtime."""

from cloudless.runtime.engine import CallResult, LoadedPackage, WasmRuntime
from cloudless.runtime.host_functions import CallContext
from cloudless.runtime.limits import MAX_PACKAGE_BYTES, HostLimits
from cloudless.runtime.manifest import Manifest
from cloudless.runtime.package import (
    FunctionPackage,
    PackageModule,
    build_package,
    build_package_from_dir,
    read_package,
)
from cloudless.runtime.ticker import EPOCH_TICK_MS

__all__ = [
    "EPOCH_TICK_MS",
    "MAX_PACKAGE_BYTES",
    "CallContext",
    "CallResult",
    "FunctionPackage",
    "HostLimits",
    "LoadedPackage",
    "Manifest",
    "PackageModule",
    "WasmRuntime",
    "build_package",
    "build_package_from_dir",
    "read_package",
]
