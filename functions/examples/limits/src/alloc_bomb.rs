use serde::de::IgnoredAny;

/// Size of each allocation: 16 Wasm pages.
const CHUNK_BYTES: usize = 1 << 20;

/// Allocates 1 MiB chunks and keeps them until the allocator fails. The
/// failure aborts, which is a trap for the host. Without a memory limit the
/// loop ends at the 4 GiB address space of wasm32.
///
/// The chunks are touched once each (volatile write), so the optimizer keeps
/// every allocation while the call uses little fuel per MiB.
pub fn alloc_bomb(_request: IgnoredAny) -> Result<(), String> {
    let mut chunks: Vec<Vec<u8>> = Vec::new();
    loop {
        let mut chunk = Vec::with_capacity(CHUNK_BYTES);
        // SAFETY: the capacity is at least one byte, so the pointer is valid
        // for a one-byte write.
        unsafe { std::ptr::write_volatile(chunk.as_mut_ptr(), 1_u8) };
        chunks.push(chunk);
    }
}
