use std::process::ExitCode;

use clap::Parser;

/// mimalloc: the pipeline makes many small, short-lived allocations, which
/// cost the system allocator far more of the hub's CPU (docs/PERFORMANCE.md,
/// Measurements behind design decisions).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `mi_option_purge_delay`, which its Rust binding does not
/// name. The number is the same in mimalloc 2 and 3 (the option enum keeps
/// the places of retired options); a test below checks it by its default.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// How long freed memory stays with the allocator before it goes back to
/// the system, in milliseconds. mimalloc 3's default lets the hub's RSS
/// carry a second's worth of freed pages; much shorter delays cost CPU.
/// Why this value: docs/PERFORMANCE.md, Measurements behind design
/// decisions.
const PURGE_DELAY_MS: libc::c_long = 100;

/// Sets the purge delay, unless the operator set `MIMALLOC_PURGE_DELAY`.
fn set_purge_delay() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: sets an option's value; mimalloc reads options atomically.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, PURGE_DELAY_MS) };
    }
}

/// Sizes the stack of the threads the AMQP client starts for itself (one
/// per connection, which parses every frame), unless the operator set
/// `RUST_MIN_STACK`: a header table nests as deep as a frame allows, and
/// the client parses it recursively (`gridhub::amqp::limits`).
fn size_client_threads() {
    if std::env::var_os("RUST_MIN_STACK").is_none() {
        // SAFETY: called first thing in main, before any other thread
        // exists that could read the environment at the same time.
        unsafe {
            std::env::set_var(
                "RUST_MIN_STACK",
                gridhub::amqp::limits::THREAD_STACK.to_string(),
            )
        };
    }
}

fn main() -> ExitCode {
    size_client_threads();
    set_purge_delay();
    let cli = gridhub::cli::Cli::parse();
    gridhub::cli::run(cli)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn purge_delay() -> libc::c_long {
        // SAFETY: reads an option's value.
        unsafe { libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY) }
    }

    #[test]
    fn the_option_set_is_mimallocs_purge_delay() {
        if let Ok(set) = std::env::var("MIMALLOC_PURGE_DELAY") {
            // The operator's value wins, and is the one read.
            set_purge_delay();
            assert_eq!(purge_delay().to_string(), set);
            return;
        }
        // mimalloc 3's documented default: no neighbouring option has it,
        // so a shifted enum, or a mimalloc 2 build (10 ms), fails here.
        assert_eq!(purge_delay(), 1000);
        set_purge_delay();
        assert_eq!(purge_delay(), PURGE_DELAY_MS);
    }
}
