#!/usr/bin/python3
"""peer_sdk.py: the baseline peer of the end-to-end benchmark (e2e.sh).

It moves reports from a blob container into the Logs Ingestion API the way
the replaced "Spectra Detect Solution for Microsoft Sentinel" Function app
(Python 3.11) does, with the official Azure SDK packages that Debian ships
(python3-azure, python3-azure-storage):

  - azure.storage.blob.ContainerClient: list_blobs, then download_blob(name)
    .readall() of one blob at a time (the Function is triggered once per
    blob by Event Grid; it holds the whole report in memory);
  - json.loads of the report, one dict per tc_report entry with the 17
    columns of SpectraDetectLogs_CL (the mapping of baseline_transform.py,
    which the transform benchmark checks against the C transform, without
    its 64 KB field shrink, which no SDK sample does);
  - azure.monitor.ingestion.LogsIngestionClient.upload(rule_id, stream,
    records): the SDK splits the records into chunks, gzips each chunk and
    posts it, one request at a time.

With --compression none the same SDK chunking (_split_chunks) is used and
each chunk goes through the client's generated upload operation, which
serializes it, without Content-Encoding, so that both programs are compared with and without gzip.

The client is created with api_version 2023-01-01, the GA version that
later SDK releases default to (this Debian snapshot, 1.0.0b2, still
defaults to the 2021-11-01-preview that the strict fake refuses).

Two adaptations to the loopback test bed, neither of which changes the work
done per report:
  - the token comes from a minimal TokenCredential that posts the
    client_credentials form to the fake's token endpoint once (azure.identity
    refuses a non-https authority), and upload() gets enforce_https=False
    (azure-core refuses to send a bearer token over http);
  - a per-call policy gives every request a UUID4 x-ms-client-request-id:
    azure-core 1.26 writes a UUID1, which the strict fake (like the real
    service's documentation) does not accept.

Usage:
  peer_sdk.py --conn CONNECTION_STRING --container C [--prefix P]
              --endpoint URL --authority URL --tenant T --client-id ID
              --secret S [--dcr ID] [--stream S] [--compression gzip|none]

Prints one line of key=value figures at the end: blobs, bytes (report
bytes downloaded), records, wall, and user/sys CPU seconds both for the
whole process and for the work loop alone (cpu_loop: after the imports and
the client set-up, which a warm Function instance does not repeat).
Exit status: 0 success, 1 a report or a request failed.
"""

import argparse
import gzip
import os
import resource
import sys
import time
import uuid

T_START = time.perf_counter()

# The SDK imports are part of what the process costs; they are timed
# separately (cpu_loop excludes them).
import requests  # noqa: E402
from azure.core.credentials import AccessToken  # noqa: E402
from azure.core.pipeline.policies import SansIOHTTPPolicy  # noqa: E402
from azure.monitor.ingestion import LogsIngestionClient  # noqa: E402
from azure.monitor.ingestion._helpers import _split_chunks  # noqa: E402
from azure.monitor.ingestion._operations._operations import \
    LogsIngestionClientOperationsMixin as GeneratedOps  # noqa: E402
from azure.storage.blob import ContainerClient  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import baseline_transform as bt  # noqa: E402


class SecretCredential:
    """A TokenCredential for the client_credentials grant against any
    authority, http included. Caches the token until 5 minutes before it
    expires, as azure.identity does."""

    def __init__(self, authority, tenant, client_id, secret):
        self.url = "%s/%s/oauth2/v2.0/token" % (authority.rstrip("/"), tenant)
        self.client_id = client_id
        self.secret = secret
        self.cache = {}

    def get_token(self, *scopes, **kwargs):
        scope = scopes[0]
        tok = self.cache.get(scope)
        if tok and tok.expires_on - 300 > time.time():
            return tok
        r = requests.post(self.url, data={
            "grant_type": "client_credentials", "client_id": self.client_id,
            "client_secret": self.secret, "scope": scope}, timeout=30)
        r.raise_for_status()
        body = r.json()
        tok = AccessToken(body["access_token"],
                          int(time.time()) + int(body["expires_in"]))
        self.cache[scope] = tok
        return tok


class Uuid4RequestId(SansIOHTTPPolicy):
    """Sets a fresh UUID4 x-ms-client-request-id on every request."""

    def on_request(self, request):
        request.http_request.headers["x-ms-client-request-id"] = \
            str(uuid.uuid4())


def records_of(doc, last_modified, now):
    """The records of one report as dicts, the way the Function builds them
    for LogsIngestionClient.upload: the mapping of baseline_transform.py
    (SPEC section 2), kept as objects. No field is shrunk to 64 KB: nothing
    says the Function does it, and checking would cost the peer one more
    serialization of every value."""
    try:
        tasks = bt.tasks_of(doc)
    except ValueError as e:
        raise bt.BadInput("invalid JSON: %s" % e)
    out = []
    for task in tasks:
        if not isinstance(task, dict) or \
           not isinstance(task.get("tc_report"), list):
            raise bt.BadInput("no tc_report array")
        submitted = bt.to_int(task.get("submitted"))
        processed = bt.to_int(task.get("processed"))
        tg = None
        for t in (processed, submitted, last_modified, now):
            if t is not None and bt.TIME_MIN <= t <= bt.TIME_MAX:
                tg = t
                break
        duration = bt.to_int(task.get("process_duration"))
        if duration is None and processed is not None and \
           submitted is not None and processed >= submitted:
            duration = processed - submitted
        common = (
            ("TimeGenerated", bt.rfc3339(tg)),
            ("task_id", bt.to_str(task.get("task_id"))),
            ("submitted", submitted),
            ("processed", processed),
            ("process_duration", duration),
            ("direct_sender", bt.to_str(task.get("direct_sender"))),
            ("worker_address", task.get("worker_address")),
            ("worker_hostname", bt.to_str(task.get("worker_hostname"))),
            ("worker_ip", task.get("worker_ip")),
            ("forwarded_for", task.get("forwarded_for")),
        )
        for pos, e in enumerate(task["tc_report"]):
            if not isinstance(e, dict):
                e = {}
            index = e.get("index")
            index = pos if index is None else bt.to_int(index)
            rec = {k: v for k, v in common if v is not None}
            for k, v in (("info", e.get("info")),
                         ("classification", e.get("classification")),
                         ("index", index),
                         ("parent", bt.to_int(e.get("parent"))),
                         ("story", e.get("story")),
                         ("tags", e.get("tags")),
                         ("interesting_strings",
                          e.get("interesting_strings"))):
                if v is not None:
                    rec[k] = v
            out.append(rec)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--conn", required=True)
    ap.add_argument("--container", required=True)
    ap.add_argument("--prefix", default=None)
    ap.add_argument("--endpoint", required=True)
    ap.add_argument("--authority", required=True)
    ap.add_argument("--tenant", required=True)
    ap.add_argument("--client-id", required=True)
    ap.add_argument("--secret", required=True)
    ap.add_argument("--dcr", default="dcr-00000000000000000000000000000000")
    ap.add_argument("--stream", default="Custom-SpectraDetectLogs_CL")
    ap.add_argument("--scope", default="https://monitor.azure.com//.default")
    ap.add_argument("--compression", choices=("gzip", "none"),
                    default="gzip")
    args = ap.parse_args()

    cred = SecretCredential(args.authority, args.tenant, args.client_id,
                            args.secret)
    logs = LogsIngestionClient(args.endpoint, cred,
                               credential_scopes=[args.scope],
                               api_version="2023-01-01",
                               per_call_policies=[Uuid4RequestId()])
    container = ContainerClient.from_connection_string(args.conn,
                                                       args.container)
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    blobs = nbytes = nrecords = failed = 0
    now = int(time.time())
    for props in container.list_blobs(name_starts_with=args.prefix):
        meta = props.metadata or {}
        if meta.get("hdi_isfolder") == "true":
            continue
        doc = container.download_blob(props.name).readall()
        blobs += 1
        nbytes += len(doc)
        if doc[:2] == b"\x1f\x8b":
            doc = gzip.decompress(doc)
        lm = int(props.last_modified.timestamp()) \
            if props.last_modified else None
        try:
            recs = records_of(doc, lm, now)
        except bt.BadInput as e:
            sys.stderr.write("%s: bad input: %s\n" % (props.name, e))
            failed += 1
            continue
        if not recs:
            continue
        if args.compression == "gzip":
            logs.upload(args.dcr, args.stream, recs, enforce_https=False)
        else:
            # upload() without its gzip step: the SDK's own chunking, and
            # the generated operation serializes each chunk.
            for chunk in _split_chunks(recs):
                GeneratedOps.upload(logs, args.dcr, args.stream, chunk,
                                    enforce_https=False)
        nrecords += len(recs)
    wall = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    print("tool=peer blobs=%d bytes=%d records=%d failed=%d wall=%.3f "
          "wall_total=%.3f user_loop=%.3f sys_loop=%.3f user=%.3f sys=%.3f "
          "maxrss_kb=%d" % (
              blobs, nbytes, nrecords, failed, wall,
              time.perf_counter() - T_START, r1.ru_utime - r0.ru_utime,
              r1.ru_stime - r0.ru_stime, r1.ru_utime, r1.ru_stime,
              r1.ru_maxrss), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
