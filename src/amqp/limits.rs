//! What a publisher can make the AMQP client parse, and the stack that takes.
//!
//! The client (lapin, on amq-protocol) parses a delivery's header tables
//! recursively, one call chain per level of nesting, on its connection's I/O
//! thread; the delivery is later dropped, again recursively, on one of the
//! runtime's threads. RabbitMQ accepts a content header as deep as its
//! `frame_max` allows (each level costs at least six bytes: an empty key's
//! length, the type and the nested table's length), and delivers it to every
//! consumer whatever frame size that consumer asked for. So the bound is
//! the broker's `frame_max` (131072 by default; 8192 in
//! `deploy/rabbitmq/rabbitmq.conf`), and the hub gives every thread that may
//! parse or drop a delivery a stack that holds the deepest table such a frame
//! can carry ([`THREAD_STACK`], checked by the tests below). The hub does
//! not consume from a broker whose `frame_max` is larger
//! ([`check_frame_max`]).

/// The largest `frame_max` the hub's threads are sized for.
pub const FRAME_MAX: u32 = 8_192;

/// Stack of every thread that parses or drops deliveries: lapin's I/O
/// threads (through `RUST_MIN_STACK`, which the binary sets when it starts)
/// and the runtime's workers. Virtual memory: a thread's pages are only
/// committed as deep as it actually goes.
pub const THREAD_STACK: usize = 64 * 1024 * 1024;

/// The deepest header table a content header of `frame_max` bytes can carry.
pub fn deepest_table(frame_max: u32) -> usize {
    frame_max as usize / 6
}

/// Refuses a broker that may deliver headers deeper than the threads are
/// sized for (`frame_max` larger than [`FRAME_MAX`], or unlimited).
pub fn check_frame_max(broker: u32) -> anyhow::Result<()> {
    if broker == 0 || broker > FRAME_MAX {
        anyhow::bail!(
            "the broker's frame_max is {broker}: a publisher could send a header table nested \
             deeper than the hub can read; set frame_max = {FRAME_MAX} in rabbitmq.conf \
             (deploy/rabbitmq/rabbitmq.conf, docs/OPERATIONS.md)"
        );
    }
    Ok(())
}

/// The bytes of a field table nested `depth` levels deep (`{"": {"": ...}}`),
/// as a publisher would send it.
pub fn nested_table(depth: usize) -> Vec<u8> {
    // Built from the inside out: each level is a table of one entry whose
    // key is empty and whose value is the level below.
    let mut table = 0u32.to_be_bytes().to_vec();
    for _ in 0..depth {
        let mut entry = Vec::with_capacity(table.len() + 6);
        entry.push(0); // empty key
        entry.push(b'F'); // a field table
        entry.extend_from_slice(&table);
        let mut outer = (entry.len() as u32).to_be_bytes().to_vec();
        outer.extend_from_slice(&entry);
        table = outer;
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses and drops a table of `depth` levels on a thread of `stack` bytes.
    fn survives(depth: usize, stack: usize) -> bool {
        let bytes = nested_table(depth);
        std::thread::Builder::new()
            .stack_size(stack)
            .spawn(move || {
                let (rest, table) =
                    lapin::types::parsing::parse_field_table(bytes.as_slice()).expect("parses");
                assert!(rest.is_empty());
                drop(table);
            })
            .expect("thread")
            .join()
            .is_ok()
    }

    /// `PROBE_DEPTH=N PROBE_STACK=BYTES cargo test -- --ignored probe`: the
    /// process aborts if the stack is too small (how THREAD_STACK was chosen).
    #[test]
    #[ignore]
    fn probe() {
        let var = |name| std::env::var(name).ok().and_then(|v| v.parse().ok());
        let (Some(depth), Some(stack)) = (var("PROBE_DEPTH"), var("PROBE_STACK")) else {
            return;
        };
        assert!(survives(depth, stack));
    }

    #[test]
    fn a_nested_table_costs_six_bytes_a_level() {
        assert_eq!(nested_table(0).len(), 4);
        assert_eq!(nested_table(10).len(), 4 + 10 * 6);
        // No deeper table fits in a frame.
        assert!(nested_table(deepest_table(FRAME_MAX) + 1).len() > FRAME_MAX as usize);
    }

    #[test]
    fn the_stack_holds_the_deepest_table_a_frame_can_carry() {
        // Parsed and dropped recursively: this overflows a small stack, so
        // it runs on a thread of the size the hub gives its own.
        assert!(survives(deepest_table(FRAME_MAX), THREAD_STACK));
    }
}
