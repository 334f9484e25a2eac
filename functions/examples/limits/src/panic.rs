use serde::de::IgnoredAny;

/// Panics. Modules are built with `panic = "abort"`, so the panic message goes
/// to stderr and the call ends in a Wasm trap instead of an error envelope.
pub fn panic(_request: IgnoredAny) -> Result<(), String> {
    panic!("the panic function panics on every call");
}
