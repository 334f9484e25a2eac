"""Hostile guest modules for the runtime's robustness tests.

Each generator returns the bytes of one Wasm module (compiled from WAT, or
hand-made bytes for malformed files) that follows guest ABI v1 apart from its
hostile part. Every well-formed module also exports a working `echo`
function, so a test can check that the same package still serves good calls
after a hostile one.
"""

from __future__ import annotations

import hashlib
from typing import Any

import wasmtime

from cloudless.runtime import build_package
from cloudless.runtime.manifest import manifest_to_json, module_path, parse_manifest
from cloudless.runtime.package import MANIFEST_PATH
from cloudless.runtime.package_tar import write_canonical_tar

PAGE = 65536
MIB = 1024 * 1024
MODULE_NAME = "guest"
WASI_MODULE = "wasi_snapshot_preview1"

DEFAULT_LIMITS = {"fuel": 5_000_000, "memory_bytes": 4 * PAGE, "timeout_ms": 5_000}
# Enough fuel to spin for minutes, so only the wall-time limit can stop the call.
HUGE_FUEL = 10_000_000_000

# Fixed strings in the data segments of every generated module: (offset, bytes).
OK_PREFIX = (0, b'{"ok":')
OK_STRING_PREFIX = (16, b'{"ok":"')
OK_TRUE = (32, b'{"ok":true}')
# Raw output of `fixed_output_module` starts here.
FIXED_OUTPUT_OFFSET = 64
# iovec and result scratch space for fd_write.
IOVEC_OFFSET = 1024
NWRITTEN_OFFSET = 1032
# The bump allocator hands out memory from here upward.
HEAP_START = 4096

# WAT signatures of the WASI preview 1 functions that the generated modules import.
WASI_SIGNATURES = {
    "clock_time_get": "(param i32 i64 i32) (result i32)",
    "clock_res_get": "(param i32 i32) (result i32)",
    "random_get": "(param i32 i32) (result i32)",
    "poll_oneoff": "(param i32 i32 i32 i32) (result i32)",
    "sock_accept": "(param i32 i32 i32) (result i32)",
    "fd_write": "(param i32 i32 i32 i32) (result i32)",
}

BUMP_ALLOCATOR = """
  ;; Bump allocator: returns 0 for a negative length or when memory cannot grow.
  (func $alloc (export "cloudless_alloc") (param $len i32) (result i32)
    (local $ptr i32)
    (local $end i32)
    (local $missing_pages i32)
    (if (i32.lt_s (local.get $len) (i32.const 0))
      (then (return (i32.const 0))))
    (local.set $ptr (global.get $heap))
    (local.set $end (i32.add (local.get $ptr) (local.get $len)))
    (local.set $missing_pages
      (i32.sub (i32.shr_u (i32.add (local.get $end) (i32.const 65535)) (i32.const 16))
               (memory.size)))
    (if (i32.gt_s (local.get $missing_pages) (i32.const 0))
      (then
        (if (i32.eq (memory.grow (local.get $missing_pages)) (i32.const -1))
          (then (return (i32.const 0))))))
    (global.set $heap (local.get $end))
    (local.get $ptr))
"""


def wat_bytes(data: bytes) -> str:
    """Return `data` as a WAT string literal body, every byte written as a \\hh escape."""
    return "".join(f"\\{byte:02x}" for byte in data)


def data_segment(offset: int, data: bytes) -> str:
    return f'(data (i32.const {offset}) "{wat_bytes(data)}")'


def abi_guest_wat(
    functions: str = "",
    *,
    imports: str = "",
    memory_pages: int = 1,
    start: str = "",
    allocator: str = BUMP_ALLOCATOR,
    data: tuple[tuple[int, bytes], ...] = (),
) -> str:
    """Return the WAT of a guest with the ABI v1 exports, `echo` and the given extra parts.

    `start` is the body of a start function, run when the module is instantiated.
    """
    segments = "\n  ".join(data_segment(offset, text) for offset, text in (OK_PREFIX, OK_STRING_PREFIX, OK_TRUE, *data))
    start_function = f"(func $on_start {start})\n  (start $on_start)" if start else ""
    return f"""
(module
  {imports}
  (memory (export "memory") {memory_pages})
  (global $heap (mut i32) (i32.const {HEAP_START}))
  {segments}
  {start_function}

  (func (export "cloudless_abi_version") (result i32) (i32.const 1))
  {allocator}
  (func (export "cloudless_free") (param i32 i32))

  (func $pack (param $ptr i32) (param $len i32) (result i64)
    (i64.or (i64.shl (i64.extend_i32_u (local.get $ptr)) (i64.const 32))
            (i64.extend_i32_u (local.get $len))))

  ;; Returns {{"ok":<input>}}, so the input must be JSON.
  (func (export "echo") (param $ptr i32) (param $len i32) (result i64)
    (local $out i32)
    (local.set $out (call $alloc (i32.add (local.get $len) (i32.const 7))))
    (memory.copy (local.get $out) (i32.const {OK_PREFIX[0]}) (i32.const {len(OK_PREFIX[1])}))
    (memory.copy (i32.add (local.get $out) (i32.const 6)) (local.get $ptr) (local.get $len))
    (i32.store8 (i32.add (i32.add (local.get $out) (i32.const 6)) (local.get $len)) (i32.const 125))
    (call $pack (local.get $out) (i32.add (local.get $len) (i32.const 7))))

  {functions}
)
"""


def compile_wat(wat: str) -> bytes:
    """Convert WAT text to Wasm bytes. wat2wasm parses but does not type-check."""
    return wasmtime.wat2wasm(wat)


# --- packages ---------------------------------------------------------------------


def manifest_template(
    functions: tuple[str, ...],
    *,
    limits: dict[str, int] | None = None,
    wasi: dict[str, Any] | None = None,
    grants: list[str] | None = None,
) -> dict[str, Any]:
    """Return a one-module manifest template. `grants` goes into the module entry when given."""
    module_entry: dict[str, Any] = {"name": MODULE_NAME}
    if grants is not None:
        module_entry["grants"] = grants
    template: dict[str, Any] = {
        "abi": 1,
        "name": "hostile-guest",
        "version": "1.0.0",
        "modules": [module_entry],
        "functions": [{"name": name, "description": f"Hostile case {name}."} for name in functions],
        "limits": dict(DEFAULT_LIMITS, **(limits or {})),
    }
    if wasi is not None:
        template["wasi"] = wasi
    return template


def package_of(
    wasm: bytes,
    functions: tuple[str, ...],
    *,
    limits: dict[str, int] | None = None,
    wasi: dict[str, Any] | None = None,
    grants: list[str] | None = None,
) -> bytes:
    """Build a one-module package with build_package, which applies every package-reader check."""
    template = manifest_template(functions, limits=limits, wasi=wasi, grants=grants)
    return build_package(template, {MODULE_NAME: wasm})


def unchecked_package_of(wasm: bytes, functions: tuple[str, ...]) -> bytes:
    """Build a canonical one-module package tar without looking inside the Wasm bytes.

    build_package reads the module's exports and so rejects a malformed
    module before a test can pass it to WasmRuntime.load.
    """
    template = manifest_template(functions)
    template["modules"][0]["path"] = module_path(MODULE_NAME)
    template["modules"][0]["sha256"] = hashlib.sha256(wasm).hexdigest()
    manifest = parse_manifest(template)
    files = [(MANIFEST_PATH, manifest_to_json(manifest)), (module_path(MODULE_NAME), wasm)]
    return write_canonical_tar(sorted(files))


def good_package() -> bytes:
    """A package whose only function is the working `echo`."""
    return package_of(compile_wat(abi_guest_wat()), ("echo",))


# --- limits -------------------------------------------------------------------------


def infinite_loop_module() -> bytes:
    """`spin` loops forever, so only fuel or the wall-time limit can stop it."""
    return compile_wat(
        abi_guest_wat(
            """
  (func (export "spin") (param i32 i32) (result i64)
    (loop $forever (br $forever))
    (unreachable))
"""
        )
    )


def memory_bomb_module() -> bytes:
    """`grow_forever` grows memory one page at a time and touches each new page.

    When memory.grow returns -1 it traps, as a Rust program does after a
    failed allocation.
    """
    return compile_wat(
        abi_guest_wat(
            f"""
  (func (export "grow_forever") (param i32 i32) (result i64)
    (local $old_pages i32)
    (loop $more
      (local.set $old_pages (memory.grow (i32.const 1)))
      (if (i32.ne (local.get $old_pages) (i32.const -1))
        (then
          (i32.store8 (i32.mul (local.get $old_pages) (i32.const {PAGE})) (i32.const 1))
          (br $more))))
    (unreachable))
"""
        )
    )


def deep_recursion_module() -> bytes:
    """`recurse` calls itself without a base case until the Wasm stack overflows."""
    return compile_wat(
        abi_guest_wat(
            """
  (func $descend (param $depth i32) (result i32)
    (i32.add (call $descend (i32.add (local.get $depth) (i32.const 1))) (i32.const 1)))

  (func (export "recurse") (param i32 i32) (result i64)
    (i64.extend_i32_u (call $descend (i32.const 0))))
"""
        )
    )


# --- output -------------------------------------------------------------------------


def huge_output_module(length: int) -> bytes:
    """`huge_output` returns a valid `{"ok":"aaa..."}` envelope of exactly `length` bytes.

    The package needs limits.memory_bytes of at least `length` plus 64 KiB.
    """
    prefix_offset, prefix = OK_STRING_PREFIX
    fill_length = length - len(prefix) - 2
    return compile_wat(
        abi_guest_wat(
            f"""
  (func (export "huge_output") (param i32 i32) (result i64)
    (local $out i32)
    (local.set $out (call $alloc (i32.const {length})))
    (if (i32.eqz (local.get $out)) (then (unreachable)))
    (memory.copy (local.get $out) (i32.const {prefix_offset}) (i32.const {len(prefix)}))
    (memory.fill (i32.add (local.get $out) (i32.const {len(prefix)})) (i32.const 97) (i32.const {fill_length}))
    ;; The bytes '"' (0x22) and '}}' (0x7d) as a little-endian i16.
    (i32.store16 (i32.add (local.get $out) (i32.const {length - 2})) (i32.const 0x7d22))
    (call $pack (local.get $out) (i32.const {length})))
"""
        )
    )


def fixed_output_module(output: bytes) -> bytes:
    """`fixed_output` returns exactly the bytes `output`, whatever they are."""
    return compile_wat(
        abi_guest_wat(
            f"""
  (func (export "fixed_output") (param i32 i32) (result i64)
    (call $pack (i32.const {FIXED_OUTPUT_OFFSET}) (i32.const {len(output)})))
""",
            data=((FIXED_OUTPUT_OFFSET, output),),
        )
    )


def invalid_utf8_output_module() -> bytes:
    """`fixed_output` returns a JSON envelope whose string contains the bytes 0xff 0xfe."""
    return fixed_output_module(b'{"ok":"\xff\xfe"}')


def invalid_json_output_module() -> bytes:
    """`fixed_output` returns UTF-8 text that stops in the middle of a JSON array."""
    return fixed_output_module(b'{"ok":[1,2')


def output_location_module(pointer: int, length: int) -> bytes:
    """`bad_location` returns the packed (pointer << 32) | length as given, without writing anything.

    Both values are unsigned 32-bit integers.
    """
    return compile_wat(
        abi_guest_wat(
            f"""
  (func (export "bad_location") (param i32 i32) (result i64)
    (call $pack (i32.const {pointer}) (i32.const {length})))
"""
        )
    )


def stream_flood_module(fd: int, chunk_bytes: int, writes: int, *, trap_after: bool = False) -> bytes:
    """`flood` writes `writes` chunks of `chunk_bytes` bytes of "x" to file descriptor `fd`.

    It then returns {"ok":true}, or traps with `unreachable` if `trap_after`.
    The chunk lives in its own pages after the first, so the package needs
    limits.memory_bytes of at least `chunk_bytes` plus two pages.
    """
    chunk_offset = PAGE
    pages = 2 + chunk_bytes // PAGE
    ending = "(unreachable)" if trap_after else f"(call $pack (i32.const {OK_TRUE[0]}) (i32.const {len(OK_TRUE[1])}))"
    return compile_wat(
        abi_guest_wat(
            f"""
  (func (export "flood") (param i32 i32) (result i64)
    (local $written i32)
    (memory.fill (i32.const {chunk_offset}) (i32.const 120) (i32.const {chunk_bytes}))
    (i32.store (i32.const {IOVEC_OFFSET}) (i32.const {chunk_offset}))
    (i32.store (i32.const {IOVEC_OFFSET + 4}) (i32.const {chunk_bytes}))
    (block $done
      (loop $write
        (br_if $done (i32.ge_u (local.get $written) (i32.const {writes})))
        (drop (call $fd_write (i32.const {fd}) (i32.const {IOVEC_OFFSET}) (i32.const 1) (i32.const {NWRITTEN_OFFSET})))
        (local.set $written (i32.add (local.get $written) (i32.const 1)))
        (br $write)))
    {ending})
""",
            imports=wasi_import("fd_write", "$fd_write"),
            memory_pages=pages,
        )
    )


# --- traps ----------------------------------------------------------------------------


def unreachable_module() -> bytes:
    """`crash` executes `unreachable` at once."""
    return compile_wat(
        abi_guest_wat(
            """
  (func (export "crash") (param i32 i32) (result i64)
    (unreachable))
"""
        )
    )


def out_of_bounds_module() -> bytes:
    """`load_past_end` reads 8 bytes that straddle the end of memory, `store_at_top` writes at address 0xffffffff."""
    return compile_wat(
        abi_guest_wat(
            f"""
  (func (export "load_past_end") (param i32 i32) (result i64)
    (i64.load (i32.sub (i32.mul (memory.size) (i32.const {PAGE})) (i32.const 4))))

  (func (export "store_at_top") (param i32 i32) (result i64)
    (i32.store (i32.const -1) (i32.const 0))
    (i64.const 0))
"""
        )
    )


def guest_with_memory(pages: int) -> bytes:
    """A good guest whose linear memory starts at `pages` pages of 64 KiB."""
    return compile_wat(abi_guest_wat(memory_pages=pages))


def start_function_module(start_body: str) -> bytes:
    """A module whose start function runs `start_body`, for example `(unreachable)`.

    Its `echo` is never reachable, because every instantiation runs the start function first.
    """
    return compile_wat(abi_guest_wat(start=start_body))


def bad_allocator_module(returned_pointer: int) -> bytes:
    """A module whose cloudless_alloc always returns `returned_pointer`, an unsigned 32-bit address."""
    allocator = f"""
  (func $alloc (export "cloudless_alloc") (param $len i32) (result i32)
    (i32.const {returned_pointer}))
"""
    return compile_wat(abi_guest_wat(allocator=allocator))


# --- imports --------------------------------------------------------------------------


def wasi_import(name: str, local_name: str = "") -> str:
    return f'(import "{WASI_MODULE}" "{name}" (func {local_name} {WASI_SIGNATURES[name]}))'


def importing_module(namespace: str, name: str, signature: str) -> bytes:
    """A module that imports function `namespace.name` with the WAT `signature`, for example "(result i32)"."""
    return compile_wat(abi_guest_wat(imports=f'(import "{namespace}" "{name}" (func {signature}))'))


# --- malformed Wasm ---------------------------------------------------------------------


def bad_magic_wasm() -> bytes:
    """A valid module whose first four bytes are the ELF magic instead of \\0asm."""
    return b"\x7fELF" + compile_wat(abi_guest_wat())[4:]


def truncated_wasm() -> bytes:
    """The first half of a valid module, so a section ends past the end of the file."""
    wasm = compile_wat(abi_guest_wat())
    return wasm[: len(wasm) // 2]


def invalid_body_wasm() -> bytes:
    """A module with correct header and section framing whose `mismatch` body fails type checking.

    `mismatch` declares an i64 result but leaves an i32 on the stack.
    """
    return compile_wat(
        abi_guest_wat(
            """
  (func (export "mismatch") (param i32 i32) (result i64)
    (i32.const 0))
"""
        )
    )
