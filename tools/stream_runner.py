"""`make dev`'s stand-in for Lambda's event source mappings on the table's stream.

Reads the stream of the local table (Dynoxide) shard by shard, from the oldest record, and
for each `AWS::Lambda::EventSourceMapping` on the table's stream in template.yaml (read
from the template, not a copy) sends the records its `FilterCriteria` pass, in batches
of its `BatchSize`, to its function through `cargo lambda watch`'s Invoke API, in the
shape Lambda delivers them. A record a function reports in `batchItemFailures` is sent
again with the rest of the batch after it, up to the mapping's `MaximumRetryAttempts`;
then it is logged as what Lambda would send to the on-failure queue.

Usage: python tools/stream_runner.py --endpoint URL --table NAME --invoke-port PORT
       python tools/stream_runner.py --self-test"""

import argparse
import base64
import json
import os
import sys
import time
import urllib.error
import urllib.request

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MISSING = object()


class TemplateLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short tags, each read as `{"Fn::Tag": value}`."""


def _tag(loader, suffix, node):
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {("Ref" if suffix == "Ref" else "Fn::" + suffix): value}


TemplateLoader.add_multi_constructor("!", _tag)


def mappings(template_path):
    """[(function binary, filters, batch size, retries)] of the stream's mappings."""
    with open(template_path, encoding="utf-8") as f:
        template = yaml.load(f, Loader=TemplateLoader)
    resources = template["Resources"]
    found = []
    for resource in resources.values():
        if resource.get("Type") != "AWS::Lambda::EventSourceMapping":
            continue
        props = resource["Properties"]
        # The table's stream, whichever table the template's TableMode picks (make dev's
        # table is the single one): any mapping whose source names a stream ARN.
        source = props.get("EventSourceArn", {})
        if "StreamArn" not in str(source) and "/stream/" not in str(source):
            continue
        function = resources[props["FunctionName"]["Ref"]]
        binary = function["Metadata"]["BuildProperties"]["Binary"]
        filters = [json.loads(f["Pattern"]) for f in props.get("FilterCriteria", {}).get("Filters", [])]
        found.append((binary, filters, int(props.get("BatchSize", 100)),
                      int(props.get("MaximumRetryAttempts", 0))))
    return found


def _leaf(rule, value):
    """One matcher of an event filter pattern against one value (or MISSING)."""
    if isinstance(rule, dict):
        (op, arg), = rule.items()
        if op == "exists":
            return (value is not MISSING) == arg
        if value is MISSING:
            return False
        if op == "prefix":
            return isinstance(value, str) and value.startswith(arg)
        if op == "anything-but":
            if isinstance(arg, dict):
                (inner, prefix), = arg.items()
                if inner != "prefix":
                    raise ValueError(f"anything-but {inner!r} is not supported here")
                return isinstance(value, str) and not value.startswith(prefix)
            banned = arg if isinstance(arg, list) else [arg]
            return value not in banned
        if op == "equals-ignore-case":
            return isinstance(value, str) and value.lower() == arg.lower()
        if op == "numeric":
            try:
                number = float(value)
            except (TypeError, ValueError):
                return False
            checks = {"=": number.__eq__, "<": number.__lt__, "<=": number.__le__,
                      ">": number.__gt__, ">=": number.__ge__}
            return all(checks[arg[i]](float(arg[i + 1])) for i in range(0, len(arg), 2))
        raise ValueError(f"filter operator {op!r} is not supported here")
    if isinstance(value, list):
        return rule in value
    return value is not MISSING and value == rule


def matches(pattern, event):
    """Whether `event` passes the pattern, as Lambda's event filtering decides it."""
    for key, rule in pattern.items():
        value = event.get(key, MISSING) if isinstance(event, dict) else MISSING
        if isinstance(rule, dict):
            if not matches(rule, value if isinstance(value, dict) else {}):
                return False
        elif not any(_leaf(r, value) for r in rule):
            return False
    return True


def passes(filters, record):
    return not filters or any(matches(p, record) for p in filters)


def _plain(value):
    """A stream AttributeValue in the JSON of Lambda's event (binary as base64)."""
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(value).decode()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def lambda_record(record, stream_arn):
    """A GetRecords record as Lambda hands it to a function."""
    out = {k: _plain(v) for k, v in record.items() if k not in ("dynamodb", "userIdentity")}
    identity = record.get("userIdentity")
    if identity:
        # Lambda's event spells the members `type` and `principalId`; GetRecords spells
        # them `Type` and `PrincipalId` (the Streams API reference's Identity).
        out["userIdentity"] = {"type": identity.get("Type", identity.get("type")),
                               "principalId": identity.get("PrincipalId", identity.get("principalId"))}
    change = {k: _plain(v) for k, v in record["dynamodb"].items()}
    when = record["dynamodb"].get("ApproximateCreationDateTime")
    if hasattr(when, "timestamp"):
        change["ApproximateCreationDateTime"] = int(when.timestamp())
    out["dynamodb"] = change
    out["eventSourceARN"] = stream_arn
    return out


def invoke(port, function, event):
    url = f"http://127.0.0.1:{port}/2015-03-31/functions/{function}/invocations"
    request = urllib.request.Request(url, data=json.dumps(event).encode(), method="POST",
                                     headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=900) as r:
            return json.loads(r.read() or b"{}")
    except (urllib.error.URLError, ValueError) as e:
        return {"error": str(e)}


def deliver(port, function, batch, retries):
    """Sends a batch, and what follows a reported failure again, as Lambda does."""
    attempts = 0
    while batch:
        print(f"stream runner: {len(batch)} records to {function}", flush=True)
        answer = invoke(port, function, {"Records": batch})
        failed = [f.get("itemIdentifier") for f in answer.get("batchItemFailures", [])]
        if "error" not in answer and not failed:
            return
        attempts += 1
        sequences = [r["dynamodb"]["SequenceNumber"] for r in batch]
        first = min((sequences.index(s) for s in failed if s in sequences), default=0)
        if attempts > retries:
            print(f"stream runner: {function} failed on {sequences[first]} after {retries} retries; "
                  "on AWS its metadata goes to the on-failure queue", flush=True)
            return
        batch = batch[first:]
        time.sleep(0.5)


def wait_for(port):
    """Until `cargo lambda watch` accepts invocations."""
    import socket

    while True:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", int(port))) == 0:
                return
        time.sleep(0.2)


def _keep_identities(http_response, parsed, **_):
    """Dynoxide spells a record's userIdentity members `type` and `principalId`, where the
    Streams API reference spells them `Type` and `PrincipalId`, so botocore's parser drops
    them: the TTL's identity is taken from the raw answer instead."""
    try:
        raw = json.loads(http_response.content).get("Records", [])
    except (ValueError, AttributeError):
        return
    identities = {r.get("eventID"): r["userIdentity"] for r in raw if r.get("userIdentity")}
    for record in parsed.get("Records", []):
        if not record.get("userIdentity") and record.get("eventID") in identities:
            record["userIdentity"] = identities[record["eventID"]]


def run(endpoint, table, port, template):
    import boto3

    from botocore.config import Config

    kw = dict(endpoint_url=endpoint, region_name=os.environ.get("AWS_REGION", "us-east-1"))
    # Dynoxide's shard ids ("shardId-00000001-<table>") are shorter than the 28 characters
    # the DynamoDB Streams API reference gives as ShardId's minimum, which botocore checks
    # before sending: the ids are the emulator's, so the check is left out here.
    streams = boto3.client("dynamodbstreams", config=Config(parameter_validation=False), **kw)
    streams.meta.events.register("after-call.dynamodbstreams.GetRecords", _keep_identities)
    arn = boto3.client("dynamodb", **kw).describe_table(TableName=table)["Table"]["LatestStreamArn"]
    targets = mappings(template)
    wait_for(port)
    iterators = {}
    while True:
        for shard in streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]:
            sid = shard["ShardId"]
            if sid not in iterators:
                iterators[sid] = streams.get_shard_iterator(
                    StreamArn=arn, ShardId=sid, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        for sid, iterator in list(iterators.items()):
            if iterator is None:
                continue
            out = streams.get_records(ShardIterator=iterator)
            iterators[sid] = out.get("NextShardIterator")
            records = [lambda_record(r, arn) for r in out["Records"]]
            for function, filters, size, retries in targets:
                chosen = [r for r in records if passes(filters, r)]
                for i in range(0, len(chosen), size):
                    deliver(port, function, chosen[i:i + size], retries)
        time.sleep(0.5)


def self_test():
    """The matchers on the patterns upkeep needs, as Lambda documents them, and the
    template's own filters on the writes they must pass and the ones they must not."""
    insert = {"eventName": "INSERT", "dynamodb": {"NewImage": {"data": {"S": "x"}}}}
    stamped = {"eventName": "MODIFY", "dynamodb": {"NewImage": {"expires_at": {"N": "9"}}}}
    remove = {"eventName": "REMOVE", "dynamodb": {"OldImage": {"data": {"S": "x"}}}}
    no_expiry = {"dynamodb": {"NewImage": {"expires_at": {"N": [{"exists": False}]}}}}
    data_is = lambda rule: {"dynamodb": {"NewImage": {"data": {"S": [rule]}}}}  # noqa: E731
    patterns = [
        (no_expiry, insert, True),
        (no_expiry, stamped, False),
        (no_expiry, remove, True),  # a REMOVE has no NewImage: `exists: false` matches it
        ({"eventName": ["INSERT", "MODIFY"]}, remove, False),
        ({"dynamodb": {"NewImage": {"expires_at": {"N": [{"numeric": [">", 5]}]}}}}, stamped, True),
        (data_is({"prefix": "y"}), insert, False),
        (data_is({"anything-but": "y"}), insert, True),
        (data_is({"anything-but": {"prefix": "x"}}), insert, False),
        (data_is({"anything-but": {"prefix": "#"}}), insert, True),
    ]
    ok = all(matches(p, e) == want for p, e, want in patterns)
    image = lambda **attrs: {"NewImage": {k: v for k, v in attrs.items()}}  # noqa: E731
    key = {"S": "k" * 32}
    records = [
        ({"eventName": "MODIFY", "dynamodb": image(session_key=key, data={"S": "x"})}, True),
        ({"eventName": "INSERT", "dynamodb": image(session_key=key, expires_at={"N": "9"})}, False),
        ({"eventName": "INSERT", "dynamodb": image(session_key={"S": "#cleanup-checkpoint"})}, False),
        ({"eventName": "REMOVE", "dynamodb": {"OldImage": {"session_key": key}}}, False),
        # Tombstones (codec django): the backend's save onto one passes; the API's own
        # removal, which leaves one, and TTL's removal of one do not.
        ({"eventName": "MODIFY", "dynamodb": {**image(session_key=key, removed_at={"N": "5"},
                                                      expires_at={"N": "9"}),
                                              "OldImage": {"removed_at": {"N": "5"}}}}, True),
        ({"eventName": "MODIFY", "dynamodb": {**image(session_key=key, removed_at={"N": "5"},
                                                      expires_at={"N": "9"}),
                                              "OldImage": {"session_key": key}}}, False),
        ({"eventName": "REMOVE", "dynamodb": {"OldImage": {"removed_at": {"N": "5"}}}}, False),
        # The backend's later save to an item the upkeep stamped as its own (a login)
        # passes; the API's removal of such an item does not.
        ({"eventName": "MODIFY", "dynamodb": {**image(session_key=key, stamped_at={"N": "5"},
                                                      expires_at={"N": "9"}),
                                              "OldImage": {"stamped_at": {"N": "5"}}}}, True),
        ({"eventName": "MODIFY", "dynamodb": {**image(session_key=key, stamped_at={"N": "5"},
                                                      removed_at={"N": "6"}, expires_at={"N": "9"}),
                                              "OldImage": {"stamped_at": {"N": "5"}}}}, False),
    ]
    found = mappings(os.path.join(ROOT, "template.yaml"))
    # Both of the template's stream mappings are found, whatever shape their source has.
    ok &= sorted(f for f, _, _, _ in found) == ["session-auditor", "session-cleanup"]
    for function, filters, _, _ in found:
        if function == "session-cleanup":
            ok &= all(passes(filters, r) == want for r, want in records)
    print(f"{'ok  ' if ok else 'FAIL'} the stream runner's filters decide as Lambda's do")
    return ok


def main(argv):
    parser = argparse.ArgumentParser()
    parser.add_argument("--self-test", action="store_true")
    parser.add_argument("--endpoint")
    parser.add_argument("--table")
    parser.add_argument("--invoke-port")
    parser.add_argument("--template", default=os.path.join(ROOT, "template.yaml"))
    args = parser.parse_args(argv)
    if args.self_test:
        return 0 if self_test() else 1
    targets = ", ".join(f"{f} ({len(p)} filters)" for f, p, _, _ in mappings(args.template))
    print(f"stream runner: {args.table}'s stream to {targets}", flush=True)
    run(args.endpoint, args.table, args.invoke_port, args.template)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
