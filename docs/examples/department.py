#!/usr/bin/env python3
"""A department's system connected to gridhub, in one file (docs/CONNECTING.md).

It reads its connector's contract, tries a message with the hub's dry run,
publishes with publisher confirms, and consumes the events the hub sends
back, acknowledging each by hand once handled and handling each event_id
once. Python 3.8 or later with pika (pip install pika); the rest is the
standard library.

  department.py contract [--samples DIR]
      the contract (GET /api/connectors/{id}); with --samples, writes every
      sample body and schema under DIR
  department.py try [--amqp-type v2] [--case CASE_NO] FILE
      the dry run (POST /api/connectors/{id}/{type}/validate); exit 1 if
      the hub would refuse it
  department.py publish [--amqp-type v2] [--case CASE_NO] FILE
      publishes FILE with confirms; exit 1 if the broker did not take it
  department.py work --reply [VERSION:]FILE ... [--seen FILE] [--idle S]
                     [--stop-before-ack]
      consumes events; to each new case.dispatched, replies with the files
      given, the case's number put in; stops after S seconds without one

Settings, from the environment or the option of the same name:

  HUB_AMQP_URL   --amqp-url   amqps://dept-housing:PASSWORD@mq.district:5671/%2f
                              (its user is the user_id of every message)
  HUB_CA_FILE    --ca-file    the CA that signed the broker's (and the API's)
                              certificate; the system's roots without it
  HUB_CONNECTOR  --connector  dept-housing
  HUB_EXCHANGE   --exchange   gridhub.in
  HUB_QUEUE      --queue      gridhub.out.<connector>
  HUB_API        --api        https://hub.district
  HUB_TOKEN      --token      the API token scoped to the connector
"""

import argparse
import base64
import datetime
import hashlib
import json
import os
import re
import sqlite3
import ssl
import sys
import urllib.error
import urllib.parse
import urllib.request

try:
    import pika
    from pika import exceptions as pika_exceptions
except ImportError:  # pragma: no cover - environment problem
    sys.exit("department.py: the 'pika' package is required (pip install pika)")


# --- Settings ----------------------------------------------------------------


def parse_args(argv):
    env = os.environ.get
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--amqp-url", default=env("HUB_AMQP_URL"))
    common.add_argument("--ca-file", default=env("HUB_CA_FILE"))
    common.add_argument("--connector", default=env("HUB_CONNECTOR", "dept-housing"))
    common.add_argument("--exchange", default=env("HUB_EXCHANGE", "gridhub.in"))
    common.add_argument("--queue", default=env("HUB_QUEUE"),
                        help="default gridhub.out.<connector>")
    common.add_argument("--api", default=env("HUB_API"))
    common.add_argument("--token", default=env("HUB_TOKEN"))
    common.add_argument("--type", default="feedback", dest="message_type",
                        help="the message type (routing key <connector>.<type>)")
    common.add_argument("--case-field", default="AJBH",
                        help="the field that names the case (dept-housing: AJBH)")

    parser = argparse.ArgumentParser(prog="department.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    contract = commands.add_parser("contract", parents=[common])
    contract.add_argument("--samples", metavar="DIR")
    for name in ("try", "publish"):
        command = commands.add_parser(name, parents=[common])
        command.add_argument("--amqp-type", metavar="VERSION",
                             help="the AMQP type property: v2 (none: v1)")
        command.add_argument("--case", metavar="CASE_NO",
                             help="put this case number in the message")
        command.add_argument("file")
    work = commands.add_parser("work", parents=[common])
    work.add_argument("--reply", action="append", required=True, metavar="[VERSION:]FILE")
    work.add_argument("--seen", default="department-seen.sqlite3",
                      help="where the event_ids already handled are kept")
    work.add_argument("--idle", type=float, default=30.0, metavar="SECONDS")
    work.add_argument("--stop-before-ack", action="store_true",
                      help="stop after handling the first new event, without "
                           "acknowledging it, as a crash would")
    args = parser.parse_args(argv)
    if args.queue is None:
        args.queue = "gridhub.out." + args.connector
    return args


def need(args, *names):
    for name in names:
        if not getattr(args, name):
            sys.exit("department.py: set HUB_%s or --%s" % (name.upper(), name.replace("_", "-")))


def tls_context(args):
    """Verifies the server's certificate and name, against the hub's CA."""
    return ssl.create_default_context(cafile=args.ca_file)


# --- Messages ----------------------------------------------------------------


def read_message(path, case_no, case_field):
    """A message's bytes, with the case number put in (the field named
    case_field, wherever it is). Your system builds its messages from its
    own records; this example starts from a sample of the contract."""
    with open(path, "rb") as f:
        raw = f.read()
    if case_no is None:
        return raw
    message = json.loads(raw)

    def put(node):
        found = 0
        if isinstance(node, dict):
            for key, value in node.items():
                if key == case_field:
                    node[key] = case_no
                    found += 1
                else:
                    found += put(value)
        elif isinstance(node, list):
            for value in node:
                found += put(value)
        return found

    if put(message) != 1:
        sys.exit("department.py: %s names no single %s" % (path, case_field))
    return json.dumps(message, ensure_ascii=False, indent=2).encode("utf-8")


def message_id_of(routing_key, amqp_type, body):
    """A stable message_id: the same message always gets the same id, so a
    message sent again (after a timeout, a crash, a restart) has no second
    effect. Here the SHA-256 of what the hub judges: the routing key, the
    type property and the body. A corrected message, whether its body or its
    type property changed, is a new message with a new id; an id your system
    already keeps for each message does as well."""
    digest = hashlib.sha256()
    digest.update(("%s\n%s\n" % (routing_key, amqp_type or "")).encode("utf-8"))
    digest.update(body)
    return digest.hexdigest()


# --- The hub's API: the contract and the dry run -----------------------------


def api(args, method, path, body=None, query=None):
    need(args, "api", "token")
    url = args.api.rstrip("/") + path
    if query:
        url += "?" + urllib.parse.urlencode(query)
    request = urllib.request.Request(url, data=body, method=method, headers={
        "Authorization": "Bearer " + args.token,
        "Content-Type": "application/json",
    })
    context = tls_context(args) if url.startswith("https:") else None
    try:
        with urllib.request.urlopen(request, timeout=30, context=context) as response:
            return json.load(response)
    except urllib.error.HTTPError as error:
        reason = error.read().decode("utf-8", "replace")
        sys.exit("department.py: %s %s: %s %s" % (method, path, error.code, reason))


def contract(args):
    quoted = urllib.parse.quote(args.connector)
    c = api(args, "GET", "/api/connectors/" + quoted)
    print("%s %s (%s)" % (c["id"], c["name"], c["kind"]))
    publish = c["publish"]
    print("publishes to %s, user_id %s, message_id required" % (
        publish["exchange"], "required" if publish["user_id_required"] else "optional"))
    for m in publish["messages"]:
        chosen = "type property " + m["amqp_type"] if m["amqp_type"] else "no type property"
        deprecated = ", deprecated: goes " + m["deprecated"] if m["deprecated"] else ""
        samples = m["samples"]
        print("  %s %s (%s%s): %s, %d valid and %d invalid samples" % (
            m["routing_key"], m["version"], chosen, deprecated, m["schema_file"],
            len(samples["valid"]), len(samples["invalid"])))
    receive = c["receive"]
    print("receives on %s: %s (%s)" % (
        receive["queue"], ", ".join(receive["events"]), receive["event_schema_file"]))
    print("personal data received: reporter %s" % c["personal_data_received"]["reporter"])
    if args.samples:
        written = 0
        for m in publish["messages"]:
            # The repository's layout: feedback/, feedback.v2/, ...
            folder = m["type"] if m["version"] == "v1" else m["type"] + "." + m["version"]
            write_file(os.path.join(args.samples, folder, "schema.json"),
                       json.dumps(m["schema"], ensure_ascii=False, indent=2).encode("utf-8"))
            for kind in ("valid", "invalid"):
                for sample in m["samples"][kind]:
                    if sample.get("body") is not None:
                        body = sample["body"].encode("utf-8")
                    else:
                        body = base64.b64decode(sample["body_base64"])
                    write_file(os.path.join(args.samples, folder, kind, sample["name"]), body)
                    written += 1
        write_file(os.path.join(args.samples, "event.schema.json"),
                   json.dumps(receive["event_schema"], ensure_ascii=False, indent=2).encode("utf-8"))
        print("%d samples and their schemas written under %s" % (written, args.samples))
    return 0


def write_file(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def dry_run(args):
    body = read_message(args.file, args.case, args.case_field)
    query = {"content_type": "application/json"}
    if args.amqp_type:
        query["version"] = args.amqp_type
    path = "/api/connectors/%s/%s/validate" % (
        urllib.parse.quote(args.connector), urllib.parse.quote(args.message_type))
    verdict = api(args, "POST", path, body=body, query=query)
    version = "%s %s" % (verdict["type"], verdict.get("version") or "-")
    if verdict.get("deprecated"):
        version += ", deprecated: goes " + verdict["deprecated"]
    if not verdict["accepted"]:
        print("%s: REFUSED at %s (%s)" % (args.file, verdict["refused_at"], version))
        for violation in verdict["violations"]:
            print("  %s: %s" % (violation["path"] or "/", violation["message"]))
        if not verdict["violations"]:
            print("  " + verdict["reason"])
        return 1
    becomes = verdict["becomes"]
    if becomes["kind"] == "step":
        what = "step %s on case %s" % (becomes["action"], becomes["case"].get("case_no"))
    else:
        what = becomes["kind"]
    print("%s: accepted (%s): %s" % (args.file, version, what))
    return 0


# --- The broker: publishing with confirms ------------------------------------


def connect(args):
    need(args, "amqp_url")
    parameters = pika.URLParameters(args.amqp_url)
    if args.amqp_url.startswith("amqps://"):
        parameters.ssl_options = pika.SSLOptions(tls_context(args), server_hostname=parameters.host)
    return pika.BlockingConnection(parameters)


def broker_user(args):
    """The user the URL logs in as: every message's user_id must be it."""
    return urllib.parse.unquote(urllib.parse.urlsplit(args.amqp_url).username or "")


def publish(args, channel, body, amqp_type):
    """Publishes one message and returns once the broker has confirmed it
    (then the message is the hub's). Raises if the broker refused it or no
    queue took it."""
    routing_key = "%s.%s" % (args.connector, args.message_type)
    message_id = message_id_of(routing_key, amqp_type, body)
    channel.basic_publish(
        exchange=args.exchange,
        routing_key=routing_key,
        body=body,
        properties=pika.BasicProperties(
            message_id=message_id,
            user_id=broker_user(args),  # the broker checks it is the connection's user
            content_type="application/json",
            type=amqp_type,  # None: v1; "v2": the format's version 2
            delivery_mode=2,  # persistent
        ),
        mandatory=True,  # a message no queue takes comes back: an error, not a success
    )
    return message_id


def publish_command(args):
    body = read_message(args.file, args.case, args.case_field)
    connection = None
    try:
        connection = connect(args)
        channel = connection.channel()
        channel.confirm_delivery()
        message_id = publish(args, channel, body, args.amqp_type)
    except (pika_exceptions.AMQPError, OSError) as error:
        # Refused by the broker (ACCESS_REFUSED, a nack), returned
        # (unroutable), or no connection (TLS included): not the hub's. Send it
        # again later.
        print("%s: NOT published: %r" % (args.file, error))
        return 1
    finally:
        if connection is not None and connection.is_open:
            connection.close()
    print("%s: published as %s.%s %s, message_id %s: confirmed" % (
        args.file, args.connector, args.message_type, args.amqp_type or "v1", message_id))
    return 0


# --- The broker: consuming events, each event_id once -------------------------


class Seen:
    """The event_ids already handled, kept across restarts. The hub sends
    each event at least once, so one may come twice; the second is
    recognised here and only acknowledged. In your system, record the
    event_id in the same transaction as what the event does."""

    def __init__(self, path):
        self.db = sqlite3.connect(path)
        with self.db:
            self.db.execute(
                "CREATE TABLE IF NOT EXISTS seen ("
                " event_id TEXT PRIMARY KEY, event TEXT NOT NULL,"
                " case_no TEXT, handled_at TEXT NOT NULL)")

    def __contains__(self, event_id):
        row = self.db.execute("SELECT 1 FROM seen WHERE event_id = ?", (event_id,)).fetchone()
        return row is not None

    def add(self, event):
        with self.db:
            self.db.execute(
                "INSERT OR IGNORE INTO seen VALUES (?, ?, ?, ?)",
                (event["event_id"], event["event"], event.get("case_no"),
                 datetime.datetime.now(datetime.timezone.utc).isoformat()))


def replies_of(args):
    replies = []
    for reply in args.reply:
        version = re.match(r"(v[0-9]+):(.*)$", reply)
        replies.append(version.groups() if version else (None, reply))
    return replies


def work(args):
    replies = replies_of(args)
    seen = Seen(args.seen)
    connection = connect(args)
    publisher = connection.channel()
    publisher.confirm_delivery()
    consumer = connection.channel()
    consumer.basic_qos(prefetch_count=10)
    print("consuming %s as %s" % (args.queue, broker_user(args)))
    received = handled = 0
    for method, properties, body in consumer.consume(args.queue, inactivity_timeout=args.idle):
        if method is None:
            break
        received += 1
        # Not JSON, or no event_id: the hub never sends that. Stop without
        # acknowledging it, so that it is not lost.
        event = json.loads(body)
        event_id = event["event_id"]  # also the message's message_id
        again = " (redelivered)" if method.redelivered else ""
        print("event %s%s: %s %s" % (event_id, again, event["event"], event.get("case_no", "")))
        if event_id in seen:
            consumer.basic_ack(method.delivery_tag)
            print("  already handled: acknowledged")
            continue
        if event["event"] == "case.dispatched":
            print("  %s, due %s, %s" % (event["title"], event.get("due_at"), event.get("role")))
            # A reply the broker refuses raises: the program ends before the
            # ack, the event comes again, and the replies already confirmed
            # are recognised by their message_id.
            for version, path in replies:
                reply = read_message(path, event["case_no"], args.case_field)
                message_id = publish(args, publisher, reply, version)
                print("  replied %s.%s %s, message_id %s: confirmed" % (
                    args.connector, args.message_type, version or "v1", message_id))
        seen.add(event)
        handled += 1
        if args.stop_before_ack:
            print("  handled; stopping before the ack, as a crash would")
            connection.close()
            return 0
        consumer.basic_ack(method.delivery_tag)
        print("  handled: acknowledged")
    consumer.cancel()
    connection.close()
    print("no event for %g s: %d received, %d handled" % (args.idle, received, handled))
    return 0


def main(argv):
    args = parse_args(argv)
    if args.command == "contract":
        return contract(args)
    if args.command == "try":
        return dry_run(args)
    if args.command == "publish":
        return publish_command(args)
    return work(args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
