#!/usr/bin/env python3
"""Hostile AMQP 0-9-1 publisher for the integration tests.

Publishes messages that lapin cannot send (non-UTF-8 short strings in
properties and header keys, header tables nested thousands of levels deep,
oversized bodies) so the tests can check how gridhub copes with them.
Every publish uses publisher confirms; exit status 0 means all were acked.

Usage:
  python3 tests/it/hostile.py --url amqp://guest:guest@127.0.0.1:5672/%2f \
      --exchange EX --routing-key RK [options] [--count N]

Output: one JSON line on stdout, {"published": n, "confirmed": n,
"returned": n}, printed whenever publishing started. Exit status: 0 when every
publish was acked by the broker (a mandatory message that came back through
basic.return is still acked, so it counts as confirmed *and* returned), 1 when
a publish was nacked or the channel/connection failed, 2 for bad arguments.
A short reason goes to stderr on failure.

Raw bytes: pika's short-string encoder (data.encode_short_string, used for
property values and table keys) passes `bytes` through unchanged, so
--message-id-hex, --type-hex and --header-key-hex hand pika `bytes` objects
and those exact octets go on the wire (checked by capturing the frames).
pika decodes a short string that is not valid UTF-8 back to `bytes`.

Deep headers (--nested-depth): pika's table encoder recurses twice per level
(encode_table -> encode_value -> encode_table ...), so pika itself encodes the
table; no hand-made field-table bytes are needed. With --nested-depth the
script raises the recursion limit to 4*N+2000 and runs the whole connection
in a worker thread created after threading.stack_size(NESTED_STACK_BYTES).
Measured for N = 10,000: CPython 3.11+ needs only the recursion limit (Python
calls do not use the C stack); CPython 3.10 needs 8 MiB of thread stack (7 MiB
crashes). 256 MiB is reserved (virtual memory only), good for 100,000 levels
on 3.10. Each level costs 7 bytes of content header ("a" key, 'F' tag, 4-byte
length); the whole header must fit one frame (RabbitMQ default 131072 bytes).
"""

import argparse
import json
import sys
import threading

try:
    import pika
    from pika import exceptions as pika_exc
except ImportError:  # pragma: no cover - environment problem
    sys.stderr.write("hostile.py: the 'pika' package is required (pip install pika)\n")
    sys.exit(2)

# Worker-thread stack for --nested-depth (see the module docstring).
NESTED_STACK_BYTES = 256 * 1024 * 1024
# Python frames per nesting level in pika's encoder, plus slack.
FRAMES_PER_LEVEL = 4
RECURSION_SLACK = 2000


def _hex(value, option):
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise argparse.ArgumentTypeError("%s: not a hex string: %r" % (option, value))


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="hostile.py",
        description="Publish hostile AMQP messages with publisher confirms.")
    p.add_argument("--url", required=True,
                   help="AMQP URL, e.g. amqp://guest:guest@127.0.0.1:5672/%%2f")
    p.add_argument("--exchange", required=True, help="exchange ('' for the default exchange)")
    rk = p.add_mutually_exclusive_group(required=True)
    rk.add_argument("--routing-key")
    rk.add_argument("--routing-key-hex", metavar="HEX",
                    type=lambda v: _hex(v, "--routing-key-hex"),
                    help="routing key as raw bytes (ASCII and control characters, e.g. a NUL)")
    body = p.add_mutually_exclusive_group()
    body.add_argument("--body-file", metavar="PATH", help="body read from this file")
    body.add_argument("--body-size", metavar="BYTES", type=int,
                      help='body of exactly BYTES bytes: {"x":"aaaa..."}')
    body.add_argument("--body", metavar="TEXT", help="body text (UTF-8); default '{}'")
    mid = p.add_mutually_exclusive_group()
    mid.add_argument("--message-id", metavar="TEXT",
                     help="message_id; suffixed -1..-N when --count N > 1")
    mid.add_argument("--message-id-hex", metavar="HEX",
                     help="message_id as raw bytes, e.g. 'fffe' (not suffixed)")
    typ = p.add_mutually_exclusive_group()
    typ.add_argument("--type", metavar="TEXT", help="type property")
    typ.add_argument("--type-hex", metavar="HEX", help="type property as raw bytes")
    p.add_argument("--app-id", metavar="TEXT")
    p.add_argument("--user-id", metavar="TEXT")
    p.add_argument("--content-type", metavar="TEXT")
    p.add_argument("--header", metavar="KEY=VALUE", action="append", default=[],
                   help="string header (repeatable)")
    p.add_argument("--header-key-hex", metavar="HEX", action="append", default=[],
                   help="header whose key is these raw bytes, value 'x' (repeatable)")
    p.add_argument("--nested-depth", metavar="N", type=int,
                   help="header 'deep' = table nested N levels: {'a': {'a': ...}}")
    p.add_argument("--mandatory", action="store_true", help="publish with mandatory=true")
    p.add_argument("--count", metavar="N", type=int, default=1,
                   help="publish the same message N times (default 1)")
    args = p.parse_args(argv)

    if args.count < 1:
        p.error("--count must be >= 1")
    if args.body_size is not None and args.body_size < 0:
        p.error("--body-size must be >= 0")
    if args.nested_depth is not None and args.nested_depth < 1:
        p.error("--nested-depth must be >= 1")
    try:
        if args.message_id_hex is not None:
            args.message_id_hex = _hex(args.message_id_hex, "--message-id-hex")
        if args.type_hex is not None:
            args.type_hex = _hex(args.type_hex, "--type-hex")
        args.header_key_hex = [_hex(h, "--header-key-hex") for h in args.header_key_hex]
    except argparse.ArgumentTypeError as e:
        p.error(str(e))
    for h in args.header:
        if "=" not in h:
            p.error("--header expects KEY=VALUE, got %r" % h)
    return args


def filler_body(size):
    """Exactly `size` bytes, valid JSON whenever size allows it."""
    if size >= 8:
        return b'{"x":"' + b"a" * (size - 8) + b'"}'
    if size >= 2:
        return b"{}" + b" " * (size - 2)
    return b"0" * size


def build_body(args):
    if args.body_file is not None:
        with open(args.body_file, "rb") as f:
            return f.read()
    if args.body_size is not None:
        return filler_body(args.body_size)
    if args.body is not None:
        return args.body.encode("utf-8")
    return b"{}"


def nested_table(depth):
    """{'a': {'a': ... {} ...}} with `depth` levels, built without recursion."""
    table = {}
    for _ in range(depth - 1):
        table = {"a": table}
    return table


def build_headers(args):
    headers = {}
    for h in args.header:
        key, value = h.split("=", 1)
        headers[key] = value
    for key in args.header_key_hex:
        headers[key] = "x"
    if args.nested_depth is not None:
        headers["deep"] = nested_table(args.nested_depth)
    return headers or None


def build_properties(args, headers, message_id):
    return pika.BasicProperties(
        content_type=args.content_type,
        headers=headers,
        message_id=message_id,
        type=args.type_hex if args.type_hex is not None else args.type,
        user_id=args.user_id,
        app_id=args.app_id,
    )


def publish(args, stats):
    """Publish args.count messages; return an error string or None."""
    body = build_body(args)
    headers = build_headers(args)
    connection = pika.BlockingConnection(pika.URLParameters(args.url))
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        error = None
        for i in range(1, args.count + 1):
            if args.message_id_hex is not None:
                message_id = args.message_id_hex
            elif args.message_id is not None:
                message_id = args.message_id if args.count == 1 else "%s-%d" % (args.message_id, i)
            else:
                message_id = None
            props = build_properties(args, headers, message_id)
            # pika takes the routing key as text: bytes of one octet each.
            routing_key = (args.routing_key if args.routing_key is not None
                           else args.routing_key_hex.decode("latin-1"))
            stats["published"] += 1
            try:
                channel.basic_publish(exchange=args.exchange, routing_key=routing_key,
                                      body=body, properties=props,
                                      mandatory=args.mandatory)
                stats["confirmed"] += 1
            except pika_exc.UnroutableError:
                # basic.return followed by basic.ack
                stats["returned"] += 1
                stats["confirmed"] += 1
            except pika_exc.NackError:
                error = error or "message %d was nacked by the broker" % i
        return error
    finally:
        try:
            if connection.is_open:
                connection.close()
        except Exception:  # noqa: BLE001 - best effort cleanup
            pass


def run(args, outcome):
    stats = {"published": 0, "confirmed": 0, "returned": 0}
    outcome["stats"] = stats
    try:
        outcome["error"] = publish(args, stats)
    except (pika_exc.ChannelClosed, pika_exc.ConnectionClosed) as e:
        outcome["error"] = "closed by broker: %r" % (e,)
    except pika_exc.AMQPConnectionError as e:
        outcome["error"] = "connection failed: %r" % (e,)
    except RecursionError:
        outcome["error"] = "recursion limit hit while encoding"
    except Exception as e:  # noqa: BLE001 - report anything as a failure
        outcome["error"] = "%s: %s" % (type(e).__name__, e)


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    outcome = {}
    if args.nested_depth is not None:
        sys.setrecursionlimit(max(sys.getrecursionlimit(),
                                  FRAMES_PER_LEVEL * args.nested_depth + RECURSION_SLACK))
        threading.stack_size(NESTED_STACK_BYTES)
        worker = threading.Thread(target=run, args=(args, outcome), name="hostile-publish")
        worker.start()
        worker.join()
    else:
        run(args, outcome)

    stats = outcome.get("stats")
    if stats is None:
        sys.stderr.write("hostile.py: publisher thread died\n")
        return 1
    error = outcome.get("error")
    if stats["published"]:
        sys.stdout.write(json.dumps(stats) + "\n")
        sys.stdout.flush()
    if error is None and stats["confirmed"] != args.count:
        error = "only %d of %d publishes confirmed" % (stats["confirmed"], args.count)
    if error is not None:
        sys.stderr.write("hostile.py: %s\n" % error)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
