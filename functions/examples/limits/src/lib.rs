//! Functions for tests of the host's runtime limits: `spin` runs out of fuel
//! or time, `alloc_bomb` runs out of memory, `panic` traps and `echo` is a
//! call that succeeds.

mod alloc_bomb;
mod echo;
mod panic;
mod spin;

cloudless_sdk::export_function!(spin, spin::spin);
cloudless_sdk::export_function!(alloc_bomb, alloc_bomb::alloc_bomb);
cloudless_sdk::export_function!(panic, panic::panic);
cloudless_sdk::export_function!(echo, echo::echo);
