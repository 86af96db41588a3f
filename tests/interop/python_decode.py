#!/usr/bin/env python3
"""Decodes Workload API messages with the classes py-spiffe generated from its own copy of
workload.proto (`spiffe._proto.workload_pb2`, the `spiffe` package from PyPI).

Used by Lanyard's wire test `wire_cross` (crates/workload/tests/workload_api/): the messages
are what Lanyard's server sent, byte for byte. The script knows nothing about Lanyard; it walks
each message by py-spiffe's descriptors, so a field Lanyard numbers or types differently shows
up under the wrong name, as a wrong value, or among the unknown fields.

Usage: python_decode.py MESSAGES.json

MESSAGES.json maps a message name to its encoding in base64:
{"X509SVIDResponse": "CjQK...", "JWTSVIDRequest": "...", ...}.

Prints one JSON object: "messages" holds, for each name, {"fields": {...}, "unknown_fields":
[...]}, and "known" lists every message py-spiffe defines, so that the test sees what it does
not cover. Every field of a message is listed, set or not; bytes are base64, maps are objects,
repeated fields are lists, a google.protobuf.Struct is its JSON form (numbers are doubles, as in
the Struct type) and an absent message field is null.
"""

import base64
import json
import sys

from google.protobuf import json_format
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.unknown_fields import UnknownFieldSet

# A private module of py-spiffe; if it moves, the import error says so.
from spiffe._proto import workload_pb2


def render_message(message, path, unknown):
    """The message's fields by name; unknown fields, anywhere below, go to `unknown`."""
    for field in UnknownFieldSet(message):
        unknown.append(f"{path}: field {field.field_number}, wire type {field.wire_type}")
    fields = {}
    for field in message.DESCRIPTOR.fields:
        if is_single_message(field) and not message.HasField(field.name):
            fields[field.name] = None  # absent, which an empty message would not show
        else:
            value = getattr(message, field.name)
            fields[field.name] = render_field(field, value, f"{path}.{field.name}", unknown)
    return fields


def is_single_message(field):
    """A message-typed field that is neither repeated nor a map: it can be absent."""
    return field.type == FieldDescriptor.TYPE_MESSAGE and not field.is_repeated


def render_field(field, value, path, unknown):
    """One field: a map, a repeated field or a single value."""
    if field.type == FieldDescriptor.TYPE_MESSAGE and field.message_type.GetOptions().map_entry:
        value_field = field.message_type.fields_by_name["value"]
        return {
            key: render_value(value_field, item, f"{path}[{key}]", unknown)
            for key, item in value.items()
        }
    if field.is_repeated:
        return [render_value(field, item, f"{path}[{i}]", unknown) for i, item in enumerate(value)]
    return render_value(field, value, path, unknown)


def render_value(field, value, path, unknown):
    """One value of `field`'s type, as JSON."""
    if field.type == FieldDescriptor.TYPE_BYTES:
        return base64.b64encode(value).decode("ascii")
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        if field.message_type.full_name == "google.protobuf.Struct":
            return json_format.MessageToDict(value)
        return render_message(value, path, unknown)
    return value


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: python_decode.py MESSAGES.json")
    with open(sys.argv[1], encoding="utf-8") as f:
        encoded = json.load(f)

    decoded = {}
    for name, b64 in encoded.items():
        cls = getattr(workload_pb2, name, None)
        if cls is None:
            sys.exit(f"{name}: py-spiffe's workload_pb2 has no message of that name")
        message = cls()
        message.ParseFromString(base64.b64decode(b64))
        unknown = []
        fields = render_message(message, name, unknown)
        decoded[name] = {"fields": fields, "unknown_fields": unknown}
    known = sorted(workload_pb2.DESCRIPTOR.message_types_by_name)
    print(json.dumps({"messages": decoded, "known": known}, indent=2, sort_keys=True))


if __name__ == "__main__":
    main()
