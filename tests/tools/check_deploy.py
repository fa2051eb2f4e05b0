#!/usr/bin/env python3
"""Checks the Azure-side artifacts in deploy/azure against the daemon.

The table SpectraDetectLogs_CL and the Data Collection Rule's stream
declaration must have exactly the columns spectra-sentinel emits, with the
types of SPEC section 2: a column the daemon sends that the stream does not
declare is dropped by Azure without a word, and a declared column the daemon
never sends is a silent null. This script is the guard. It

  1. parses every JSON file in deploy/azure;
  2. lints the ARM templates: every parameters()/variables() reference is
     declared, every declared parameter is used, brackets balance, and the
     parameters and outputs SPEC section 9 names are there;
  3. checks that the table columns equal the stream declaration, that the
     DCR flows that stream to Custom-<table> with transformKql "source", that
     the roles (Monitoring Metrics Publisher, Storage Blob Data Reader or
     Contributor) and the ADLS Gen2 account (isHnsEnabled) are there, and
     that the workbook embedded in azuredeploy.json is workbook.json;
  4. takes the columns the daemon emits from the code, the single source of
     truth: the records `BIN transform` prints for tests/data/samples/* (key
     names and JSON value types), and the column list in src/transform.c;
     and checks them against the template;
  5. lints every KQL query (queries.kql, the workbook, the analytics rule and
     the ```kql blocks of docs/*.md) that reads SpectraDetectLogs_CL: each
     identifier must be a column, a name the query defines, or KQL; a dotted
     access must be on a dynamic column; the analytics rule's entity
     mappings, custom details and alert format must name output columns.

Usage: check_deploy.py [--top DIR] [--bin PATH] [--fix]
  --fix rewrites the workbook embedded in azuredeploy.json from workbook.json.
Exit status: 0 all checks passed, 1 a check failed, 2 usage.
"""
import argparse
import glob
import json
import os
import re
import subprocess
import sys

TABLE = "SpectraDetectLogs_CL"
STREAM = "Custom-SpectraDetectLogs_CL"
TYPES = {"string", "int", "long", "real", "boolean", "datetime", "dynamic",
         "guid"}
RESERVED = {"_resourceid", "id", "_subscriptionid", "tenantid", "type",
            "uniqueid", "title"}
ROLE_MMP = "3913510d-42f4-4e42-8a64-420c390055eb"
ROLE_BLOB_READER = "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1"
ROLE_BLOB_CONTRIBUTOR = "ba92f5b4-2d11-453d-a403-e96b0029c9fe"
# SPEC section 9: the replaced Function app template's names that apply.
SPEC_PARAMETERS = ["logAnalyticsWorkspaceName",
                   "logAnalyticsWorkspaceResourceGroup", "newTableName",
                   "reportsStorageAccountName", "reportsContainerName",
                   "dataCollectionEndpointName", "dataCollectionRuleName",
                   "workbookDisplayName", "principalId",
                   "useExistingStorageAccount"]
SPEC_OUTPUTS = ["adlsStorageAccountName", "adlsContainerName",
                "logsIngestionEndpoint", "dcrImmutableId", "streamName"]
RFC3339_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")


class Checker:
    def __init__(self):
        self.failures = []
        self.notes = []

    def fail(self, msg):
        self.failures.append(msg)
        print("FAIL: " + msg)

    def ok(self, msg):
        print("ok: " + msg)

    def note(self, msg):
        self.notes.append(msg)
        print("note: " + msg)


# ---------------------------------------------------------------- ARM ----

EXPR_REF = re.compile(r"\b(parameters|variables)\(\s*'([^']*)'\s*\)")


def walk(value, path=""):
    """Yields (path, string) for every string in a JSON value, keys too."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield path + "/" + k + "#key", k
            yield from walk(v, path + "/" + k)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from walk(v, "%s[%d]" % (path, i))
    elif isinstance(value, str):
        yield path, value


def template_scopes(tpl, name):
    """Yields (label, template) for tpl and every inner-scoped nested one."""
    yield name, tpl
    for r in tpl.get("resources", []):
        props = r.get("properties", {})
        inner = props.get("template")
        if r.get("type") == "Microsoft.Resources/deployments" and inner:
            yield from template_scopes(inner, "%s>%s" % (name, r.get("name")))


def own_strings(tpl):
    """Strings of tpl that belong to its scope: nested inner templates are
    their own scope, so their "template" member is left out."""
    for key in ("parameters", "variables", "outputs", "metadata"):
        if key in tpl:
            yield from walk(tpl[key], "/" + key)
    for i, r in enumerate(tpl.get("resources", [])):
        if r.get("type") == "Microsoft.Resources/deployments":
            r = dict(r)
            props = dict(r.get("properties", {}))
            props.pop("template", None)
            r["properties"] = props
        yield from walk(r, "/resources[%d]" % i)


def lint_template(ck, tpl, label):
    for scope_label, scope in template_scopes(tpl, label):
        params = scope.get("parameters", {})
        variables = scope.get("variables", {})
        used = set()
        for path, s in own_strings(scope):
            if path.endswith("#key"):
                continue
            if s.startswith("[") and not s.startswith("[["):
                if not s.endswith("]"):
                    ck.fail("%s%s: expression does not end with ']': %s"
                            % (scope_label, path, s[:60]))
                body = s[1:-1]
                depth = 0
                for ch in re.sub(r"'[^']*'", "", body):
                    depth += {"(": 1, ")": -1}.get(ch, 0)
                    if depth < 0:
                        break
                if depth != 0:
                    ck.fail("%s%s: unbalanced parentheses in %s"
                            % (scope_label, path, s[:80]))
                for kind, name in EXPR_REF.findall(s):
                    table = params if kind == "parameters" else variables
                    if name not in table:
                        ck.fail("%s%s: %s('%s') is not declared"
                                % (scope_label, path, kind, name))
                    if kind == "parameters":
                        used.add(name)
        for p in params:
            if p not in used:
                ck.fail("%s: parameter %s is declared but never used"
                        % (scope_label, p))
    ck.ok("%s: ARM expressions reference only declared names" % label)


def resolve(value, variables):
    """Follows "[variables('x')]" (and x['key']) to the variable's value."""
    for _ in range(10):
        if not isinstance(value, str):
            return value
        m = re.fullmatch(r"\[variables\('([^']*)'\)\]", value)
        if not m:
            return value
        value = variables.get(m.group(1))
    return value


def find_resources(tpl, rtype):
    """Every resource of type rtype, with the scope it was found in: a list
    of (resource, template, outer deployment resource or None, outer tpl)."""
    found = []

    def visit(t, outer, outer_tpl):
        for r in t.get("resources", []):
            if r.get("type", "").lower() == rtype.lower():
                found.append((r, t, outer, outer_tpl))
            inner = r.get("properties", {}).get("template")
            if r.get("type") == "Microsoft.Resources/deployments" and inner:
                visit(inner, r, t)
    visit(tpl, None, None)
    return found


def resolve_in_scope(value, tpl, outer, outer_tpl):
    """Resolves variables of tpl and, for a nested template, its parameters
    from the values the outer deployment passes (resolved in the outer
    scope)."""
    value = resolve(value, tpl.get("variables", {}))
    m = isinstance(value, str) and re.fullmatch(r"\[parameters\('([^']*)'\)\]",
                                                value)
    if m and outer is not None:
        passed = outer["properties"].get("parameters", {}).get(m.group(1), {})
        return resolve(passed.get("value"), outer_tpl.get("variables", {}))
    return value


def columns_of(ck, cols, what):
    """[(name, type)] from a column array, checking names and types."""
    out = []
    if not isinstance(cols, list):
        ck.fail("%s: columns are not a literal array: %r" % (what, cols))
        return out
    seen = set()
    for c in cols:
        name, typ = c.get("name"), c.get("type")
        if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*",
                                                         name or ""):
            ck.fail("%s: bad column name %r" % (what, name))
            continue
        if len(name) > 45 or name.lower() in RESERVED:
            ck.fail("%s: column name %s is too long or reserved" % (what, name))
        if name in seen:
            ck.fail("%s: column %s appears twice" % (what, name))
        seen.add(name)
        if not isinstance(typ, str) or typ.lower() not in TYPES:
            ck.fail("%s: column %s has unknown type %r" % (what, name, typ))
            continue
        out.append((name, typ.lower()))
    if len(out) > 500:
        ck.fail("%s: more than 500 columns" % what)
    return out


def check_template(ck, top, tpl, workbook):
    """The column, DCR, role, storage and workbook checks. Returns the
    template's columns as {name: type}."""
    params = tpl.get("parameters", {})
    for p in SPEC_PARAMETERS:
        if p not in params:
            ck.fail("azuredeploy.json: parameter %s (SPEC section 9) is missing" % p)
    if params.get("newTableName", {}).get("defaultValue") != TABLE:
        ck.fail("azuredeploy.json: newTableName must default to " + TABLE)
    for o in SPEC_OUTPUTS:
        if o not in tpl.get("outputs", {}):
            ck.fail("azuredeploy.json: output %s is missing" % o)

    tables = find_resources(tpl, "Microsoft.OperationalInsights/workspaces/tables")
    if len(tables) != 1:
        ck.fail("azuredeploy.json: want exactly one table resource, found %d"
                % len(tables))
        return {}
    r, t, outer, outer_tpl = tables[0]
    schema = r.get("properties", {}).get("schema", {})
    table_cols = columns_of(ck, resolve_in_scope(schema.get("columns"), t, outer,
                                                 outer_tpl), "table")

    dcrs = find_resources(tpl, "Microsoft.Insights/dataCollectionRules")
    if len(dcrs) != 1:
        ck.fail("azuredeploy.json: want exactly one DCR, found %d" % len(dcrs))
        return {}
    dcr, t, outer, outer_tpl = dcrs[0]
    dprops = dcr.get("properties", {})
    decls = dprops.get("streamDeclarations", {})
    if list(decls) != [STREAM]:
        ck.fail("DCR: want exactly the stream declaration %s, have %s"
                % (STREAM, list(decls)))
        return {}
    stream_cols = columns_of(ck, resolve_in_scope(decls[STREAM].get("columns"),
                                                  t, outer, outer_tpl),
                             "stream declaration")
    if sorted(table_cols) != sorted(stream_cols):
        ck.fail("table columns differ from the stream declaration: only in the "
                "table %s, only in the stream %s"
                % (sorted(set(table_cols) - set(stream_cols)),
                   sorted(set(stream_cols) - set(table_cols))))
    else:
        ck.ok("table and stream declaration have the same %d columns and types"
              % len(table_cols))
    if ("TimeGenerated", "datetime") not in stream_cols:
        ck.fail("stream declaration lacks TimeGenerated of type datetime")

    variables = tpl.get("variables", {})
    flows = dprops.get("dataFlows", [])
    if len(flows) != 1:
        ck.fail("DCR: want one data flow, have %d" % len(flows))
    else:
        f = flows[0]
        streams = [resolve(s, variables) for s in f.get("streams", [])]
        if streams != [STREAM]:
            ck.fail("DCR data flow streams %s, want [%s]" % (streams, STREAM))
        if f.get("transformKql") != "source":
            ck.fail("DCR transformKql is %r, want 'source'" % f.get("transformKql"))
        out = resolve(f.get("outputStream"), variables)
        if out not in ("Custom-" + TABLE,
                       "[concat('Custom-', parameters('newTableName'))]"):
            ck.fail("DCR outputStream %r is not Custom-<newTableName>" % out)
        dests = [d.get("name") for d in
                 dprops.get("destinations", {}).get("logAnalytics", [])]
        if f.get("destinations") != dests or len(dests) != 1:
            ck.fail("DCR data flow destinations %s do not match the workspace "
                    "destination %s" % (f.get("destinations"), dests))
        ck.ok("DCR flows %s to %s with transformKql 'source'" % (STREAM, out))
    if "dataCollectionEndpointId" not in dprops:
        ck.fail("DCR has no dataCollectionEndpointId")
    if resolve(tpl.get("outputs", {}).get("streamName", {}).get("value"),
               variables) != STREAM:
        ck.fail("output streamName is not %s" % STREAM)
    if not find_resources(tpl, "Microsoft.Insights/dataCollectionEndpoints"):
        ck.fail("azuredeploy.json: no Data Collection Endpoint")

    # Roles: Monitoring Metrics Publisher on the DCR, a blob data role on the
    # storage; the role ids may sit in variables or parameters.
    roles = find_resources(tpl, "Microsoft.Authorization/roleAssignments")
    text = json.dumps(tpl)
    mmp = [r for r, *_ in roles if "dataCollectionRules" in r.get("scope", "")]
    if not mmp or ROLE_MMP not in text:
        ck.fail("no Monitoring Metrics Publisher role assignment on the DCR")
    blob = [r for r, *_ in roles if "storageAccounts" in r.get("scope", "")]
    if not blob or ROLE_BLOB_READER not in text or ROLE_BLOB_CONTRIBUTOR not in text:
        ck.fail("no Storage Blob Data Reader/Contributor role assignment on "
                "the storage")
    if mmp and blob:
        ck.ok("role assignments: Monitoring Metrics Publisher and Storage Blob "
              "Data Reader/Contributor")

    accounts = find_resources(tpl, "Microsoft.Storage/storageAccounts")
    if not accounts or accounts[0][0].get("properties", {}).get(
        "isHnsEnabled") is not True:
        ck.fail("no storage account with isHnsEnabled: true (ADLS Gen2)")
    if not find_resources(tpl, "Microsoft.Storage/storageAccounts/blobServices"
                          "/containers"):
        ck.fail("no reports container")
    else:
        ck.ok("ADLS Gen2 account (isHnsEnabled) and reports container")

    books = find_resources(tpl, "Microsoft.Insights/workbooks")
    if len(books) != 1:
        ck.fail("azuredeploy.json: want one workbook, found %d" % len(books))
    else:
        data = books[0][0].get("properties", {}).get("serializedData")
        try:
            embedded = json.loads(data)
        except (TypeError, ValueError) as e:
            embedded = None
            ck.fail("embedded workbook is not JSON: %s" % e)
        if embedded is not None and embedded != workbook:
            ck.fail("the workbook embedded in azuredeploy.json differs from "
                    "workbook.json (run tests/tools/check_deploy.py --fix)")
        elif embedded is not None:
            ck.ok("the workbook embedded in azuredeploy.json is workbook.json")
    return {n: t for n, t in table_cols}


def fix_workbook(path, tpl, workbook):
    for r, *_ in find_resources(tpl, "Microsoft.Insights/workbooks"):
        r["properties"]["serializedData"] = json.dumps(workbook,
                                                       separators=(",", ":"))
    with open(path, "w", encoding="utf-8") as f:
        json.dump(tpl, f, indent=2)
        f.write("\n")


# ------------------------------------------------- what the daemon emits ----

def emitted_from_cli(ck, top, binary):
    """Runs `binary transform` on every sample. Returns ({column: set of JSON
    value kinds}, number of records) or None when the command is missing."""
    samples = sorted(p for p in glob.glob(os.path.join(top, "tests/data/samples",
                                                       "**", "*"),
                                          recursive=True) if os.path.isfile(p))
    if not binary or not os.access(binary, os.X_OK):
        ck.note("no daemon binary to run (%s)" % binary)
        return None
    if not samples:
        ck.note("no sample reports in tests/data/samples")
        return None
    kinds = {}
    records = 0
    for s in samples:
        try:
            p = subprocess.run([binary, "transform", s], capture_output=True,
                               timeout=120)
        except subprocess.TimeoutExpired:
            ck.fail("transform %s timed out" % s)
            continue
        if p.returncode == 2:
            ck.note("`%s transform` is not available yet (usage error): %s"
                    % (os.path.basename(binary),
                       p.stderr.decode(errors="replace").strip()[:200]))
            return None
        if p.returncode == 4:
            continue  # a bad-input sample: no records, by design
        if p.returncode != 0:
            ck.fail("transform %s exited %d: %s" % (os.path.relpath(s, top),
                                                    p.returncode,
                                                    p.stderr.decode(errors="replace")
                                                    [:300]))
            continue
        for n, line in enumerate(p.stdout.decode("utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except ValueError as e:
                ck.fail("transform %s line %d is not JSON: %s" % (s, n, e))
                continue
            records += 1
            if "TimeGenerated" not in rec:
                ck.fail("transform %s line %d has no TimeGenerated" % (s, n))
            for k, v in rec.items():
                kinds.setdefault(k, set()).add(json_kind(v))
                if k == "TimeGenerated" and not (isinstance(v, str)
                                                 and RFC3339_UTC.match(v)):
                    ck.fail("transform %s line %d: TimeGenerated %r is not RFC 3339 "
                            "UTC" % (s, n, v))
    if records == 0:
        ck.note("the samples produced no records")
        return None
    return kinds, records


def json_kind(v):
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int):
        return "int"
    if isinstance(v, float):
        return "real"
    if isinstance(v, str):
        return "string"
    if v is None:
        return "null"
    return "dynamic"


# What a JSON value of each kind may be stored as.
ACCEPTS = {"datetime": {"string"}, "string": {"string"}, "guid": {"string"},
           "int": {"int"}, "long": {"int"}, "real": {"int", "real"},
           "boolean": {"boolean"},
           "dynamic": {"string", "int", "real", "boolean", "dynamic"}}


def c_string_literals(src):
    """(offset, text) of every C string literal, adjacent ones joined, with
    comments and character constants skipped."""
    out = []
    i, n = 0, len(src)
    pending = None
    while i < n:
        c = src[i]
        if src.startswith("/*", i):
            i = src.find("*/", i + 2)
            i = n if i < 0 else i + 2
            continue
        if src.startswith("//", i):
            i = src.find("\n", i)
            i = n if i < 0 else i
            continue
        if c == "'":
            j = i + 1
            while j < n and src[j] != "'":
                j += 2 if src[j] == "\\" else 1
            i = j + 1
            continue
        if c == '"':
            j = i + 1
            buf = []
            while j < n and src[j] != '"':
                if src[j] == "\\" and j + 1 < n:
                    buf.append(src[j + 1] if src[j + 1] in '"\\' else "\\" + src[j + 1])
                    j += 2
                else:
                    buf.append(src[j])
                    j += 1
            text = "".join(buf)
            if pending is not None and src[pending[2]:i].strip() == "":
                pending = (pending[0], pending[1] + text, j + 1)
            else:
                if pending is not None:
                    out.append(pending[:2])
                pending = (i, text, j + 1)
            i = j + 1
            continue
        i += 1
    if pending is not None:
        out.append(pending[:2])
    return out


def emitted_from_source(ck, top):
    """The column names src/transform.c writes. Two shapes are recognized:
    a table of names (an initializer block holding "TimeGenerated" and at
    least ten other identifier literals), or JSON keys written as literal
    text ("\\"task_id\\":" or ",\\"task_id\\":"). Returns a set, or None when
    the file does not exist."""
    path = os.path.join(top, "src/transform.c")
    if not os.path.exists(path):
        ck.note("src/transform.c does not exist yet")
        return None
    with open(path, encoding="utf-8", errors="replace") as f:
        src = f.read()
    lits = c_string_literals(src)
    ident = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
    # Shape 1: a brace block with the names as separate literals.
    for off, text in lits:
        if "TimeGenerated" not in text:
            continue
        start = src.rfind("{", 0, off)
        end = src.find("};", off)
        while start > 0:
            block = src[start:end]
            names = [t for o, t in lits if start <= o < end and ident.fullmatch(t)]
            keyed = [m for o, t in lits if start <= o < end
                     for m in re.findall(r'"([A-Za-z][A-Za-z0-9_]*)":', t)]
            found = set(names) | set(keyed)
            if "TimeGenerated" in found and len(found) >= 11:
                return found
            if block.count("{") > 50:
                break
            start = src.rfind("{", 0, start)
    # Shape 2: JSON keys as literal text anywhere in the file.
    keys = set()
    for _, text in lits:
        keys.update(re.findall(r'"([A-Za-z][A-Za-z0-9_]*)":', text))
    if "TimeGenerated" in keys and len(keys) >= 11:
        return keys
    ck.fail("src/transform.c exists but its column names could not be found "
            "(neither a table of names with \"TimeGenerated\" nor JSON key "
            "literals); update emitted_from_source in %s" % __file__)
    return set()


def check_emitted(ck, top, binary, template_cols):
    cli = emitted_from_cli(ck, top, binary)
    src = emitted_from_source(ck, top)
    checked = False
    if src:
        checked = True
        if src != set(template_cols):
            ck.fail("the columns src/transform.c writes differ from the template: "
                    "only in the code %s, only in the template %s"
                    % (sorted(src - set(template_cols)),
                       sorted(set(template_cols) - src)))
        else:
            ck.ok("src/transform.c writes exactly the template's %d columns"
                  % len(src))
    if cli:
        checked = True
        kinds, records = cli
        before = len(ck.failures)
        extra = sorted(set(kinds) - set(template_cols))
        if extra:
            ck.fail("`transform` emits columns the template does not declare "
                    "(Azure would drop them): %s" % extra)
        for col, ks in sorted(kinds.items()):
            typ = template_cols.get(col)
            if typ and not ks <= ACCEPTS[typ]:
                ck.fail("column %s is declared %s but `transform` emits JSON %s"
                        % (col, typ, sorted(ks - ACCEPTS[typ])))
        missing = sorted(set(template_cols) - set(kinds))
        if len(ck.failures) == before:
                ck.ok("`transform` on the samples: %d records, %d of %d columns "
                    "seen, all declared with compatible types%s"
                    % (records, len(kinds), len(template_cols),
                       "" if not missing else " (never present in the samples: %s)"
                       % ", ".join(missing)))
        if src is None and missing:
            ck.fail("without src/transform.c the samples must show every column; "
                    "missing %s" % missing)
    if not checked:
        ck.note("SKIPPED the emitted-columns check: neither `transform` output "
                "nor src/transform.c is available yet")
    return checked


# ---------------------------------------------------------------- KQL ----

KQL_WORDS = set("""
where extend project summarize by order sort asc desc top take limit let on
and or not has has_any has_all contains in between true false kind render
timechart piechart barchart columnchart table mv-apply mv-expand join union
distinct nulls first last with to step from typeof as inner leftouter
leftanti rightouter fullouter innerunique leftsemi rightsemi isfuzzy
project-away project-rename project-reorder count sample startswith
endswith matches regex notcontains hasprefix hassuffix dynamic bool int long
real string datetime timespan decimal guid null
""".split())
KQL_FUNC_OK = re.compile(r"[A-Za-z_][A-Za-z0-9_]*$")
HYPHENATED = ["mv-apply", "mv-expand", "project-away", "project-rename",
              "project-reorder", "make-series"]


def kql_strip(q):
    """Removes comments and string literals, turns ['x'] into x and
    workbook placeholders into a timespan."""
    q = re.sub(r"\[\s*'([A-Za-z_][A-Za-z0-9_]*)'\s*\]", r"\1", q)
    q = re.sub(r'\[\s*"([A-Za-z_][A-Za-z0-9_]*)"\s*\]', r"\1", q)
    out, i, n = [], 0, len(q)
    while i < n:
        c = q[i]
        if q.startswith("//", i):
            j = q.find("\n", i)
            i = n if j < 0 else j
            continue
        if c in "'\"":
            j = i + 1
            while j < n and q[j] != c:
                j += 2 if q[j] == "\\" else 1
            out.append(" _str_ ")
            i = j + 1
            continue
        out.append(c)
        i += 1
    q = "".join(out)
    q = re.sub(r"\{[A-Za-z]+(:[A-Za-z]+)?\}", "1h", q)
    for h in HYPHENATED:
        q = q.replace(h, h.replace("-", "_HY_"))
    return q


def kql_tokens(q):
    return [(m.start(), m.group(0)) for m in
            re.finditer(r"[A-Za-z_][A-Za-z0-9_]*|\d+(\.\d+)?[A-Za-z]*|\S", q)]


def kql_output_columns(q, columns):
    """The columns the query's last project (or summarize) outputs."""
    s = kql_strip(q)
    parts = re.split(r"\|\s*", s)
    for part in reversed(parts):
        m = re.match(r"(project|summarize)\b(.*)", part.strip(), re.S)
        if not m:
            continue
        body = m.group(2)
        names = []
        depth, cur = 0, ""
        for ch in body + ",":
            if ch in "([":
                depth += 1
            elif ch in ")]":
                depth -= 1
            if ch == "," and depth == 0:
                item = cur.strip()
                mm = re.match(r"([A-Za-z_][A-Za-z0-9_]*)\s*=(?!=)", item)
                if mm:
                    names.append(mm.group(1))
                elif re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", item):
                    names.append(item)
                cur = ""
            else:
                cur += ch
        if m.group(1) == "summarize":
            return None  # summarize outputs also unnamed aggregates: not checked
        return set(names)
    return None


def lint_kql(ck, label, q, columns):
    """Checks one query that reads the table. Returns the number of column
    references it made."""
    s = kql_strip(q)
    toks = kql_tokens(s)
    defined = set()
    for i, (pos, t) in enumerate(toks):
        nxt = toks[i + 1][1] if i + 1 < len(toks) else ""
        nxt2 = toks[i + 2][1] if i + 2 < len(toks) else ""
        if re.match(r"[A-Za-z_]", t) and nxt == "=" and nxt2 != "=":
            defined.add(t)
    refs = 0
    errors = []
    for i, (pos, t) in enumerate(toks):
        if not re.match(r"[A-Za-z_]", t):
            continue
        prev = toks[i - 1][1] if i > 0 else ""
        nxt = toks[i + 1][1] if i + 1 < len(toks) else ""
        word = t.replace("_HY_", "-")
        if prev == ".":
            continue  # a member of a dynamic value
        if nxt == "(":
            continue  # a function
        if t in columns:
            refs += 1
            if nxt == "." and columns[t] != "dynamic":
                errors.append("%s.%s: %s is %s, not dynamic"
                              % (t, toks[i + 2][1] if i + 2 < len(toks) else "", t,
                                 columns[t]))
            continue
        if t == TABLE or t in defined or word in KQL_WORDS or t == "_str_":
            continue
        errors.append("unknown identifier %r (not a column of %s, not defined "
                      "in the query)" % (t, TABLE))
    for e in sorted(set(errors)):
        ck.fail("KQL %s: %s" % (label, e))
    return refs


def kql_sources(ck, top, azure_dir, workbook, rule):
    """(label, query) for every KQL query that reads the table."""
    out = []
    path = os.path.join(azure_dir, "queries.kql")
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            text = f.read()
        chunks = re.split(r"^// ## ", text, flags=re.M)
        for chunk in chunks[1:]:
            title, _, body = chunk.partition("\n")
            out.append(("queries.kql '%s'" % title.strip(), body))
        if len(chunks) < 2:
            ck.fail("queries.kql has no '// ## ' query headers")
    else:
        ck.fail("deploy/azure/queries.kql is missing")
    for item in workbook.get("items", []):
        c = item.get("content", {})
        if item.get("type") == 3:
            out.append(("workbook '%s'" % item.get("name"), c.get("query", "")))
    for r in rule.get("resources", []):
        q = r.get("properties", {}).get("query")
        if q:
            out.append(("analytics rule", q))
    for md in sorted(glob.glob(os.path.join(top, "docs", "*.md"))):
        with open(md, encoding="utf-8") as f:
            text = f.read()
        for n, m in enumerate(re.finditer(r"```kql\n(.*?)```", text, re.S), 1):
            out.append(("%s block %d" % (os.path.relpath(md, top), n), m.group(1)))
    return [(label, q) for label, q in out if TABLE in q]


def check_rule(ck, rule, columns):
    res = [r for r in rule.get("resources", [])
           if r.get("type", "").endswith("/alertRules")]
    if len(res) != 1:
        ck.fail("analytics-rule.json: want one alert rule, found %d" % len(res))
        return
    r = res[0]
    p = r.get("properties", {})
    if r.get("kind") != "Scheduled":
        ck.fail("analytics rule is not Scheduled")
    q = p.get("query", "")
    if not re.search(r"toint\(classification\.classification\)\s*==\s*3", q):
        ck.fail("analytics rule does not select classification.classification "
                "== 3")
    if p.get("eventGroupingSettings", {}).get("aggregationKind") != \
        "AlertPerResult":
        ck.fail("analytics rule must raise an alert per result (per file)")
    inc = p.get("incidentConfiguration", {})
    if not inc.get("createIncident") or \
        inc.get("groupingConfiguration", {}).get("enabled"):
        ck.fail("analytics rule must create one incident per alert (grouping "
                "off)")
    out = kql_output_columns(q, columns)
    if out is None:
        ck.fail("analytics rule query does not end with a project")
        return
    wanted = set()
    for em in p.get("entityMappings", []):
        for fm in em.get("fieldMappings", []):
            wanted.add(fm.get("columnName"))
    wanted.update(p.get("customDetails", {}).values())
    for v in p.get("alertDetailsOverride", {}).values():
        wanted.update(re.findall(r"\{\{([A-Za-z_][A-Za-z0-9_]*)\}\}", v or ""))
    missing = sorted(w for w in wanted if w not in out)
    if missing:
        ck.fail("analytics rule maps columns its query does not output: %s"
                % missing)
    else:
        ck.ok("analytics rule: one incident per malicious file; entity "
              "mappings, custom details and alert text name output columns")


def check_workbook(ck, workbook, columns):
    if workbook.get("version") != "Notebook/1.0":
        ck.fail("workbook.json is not a Notebook/1.0 workbook")
    titles = []
    for item in workbook.get("items", []):
        c = item.get("content", {})
        if item.get("type") != 3:
            continue
        titles.append(c.get("title", ""))
        if c.get("resourceType") != "microsoft.operationalinsights/workspaces":
            ck.fail("workbook item %s does not query a workspace" % item.get("name"))
        h = c.get("gridSettings", {}).get("hierarchySettings")
        if h:
            out = kql_output_columns(c.get("query", ""), columns) or set()
            for key in ("idColumn", "parentColumn", "expanderColumn"):
                if h.get(key) not in out:
                    ck.fail("workbook item %s: %s %r is not an output column"
                            % (item.get("name"), key, h.get(key)))
    for want in ("classification", "over time", "threat", "worker", "sender",
                 "extraction tree"):
        if not any(want in t.lower() for t in titles):
            ck.fail("workbook has no item about '%s'" % want)


# --------------------------------------------------------------- main ----

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--top", default=os.path.join(os.path.dirname(
        os.path.abspath(__file__)), "..", ".."))
    ap.add_argument("--bin", default=os.environ.get("BIN"))
    ap.add_argument("--fix", action="store_true")
    args = ap.parse_args()
    top = os.path.abspath(args.top)
    azure = os.path.join(top, "deploy/azure")
    ck = Checker()

    docs = {}
    for path in sorted(glob.glob(os.path.join(azure, "*.json"))):
        try:
            with open(path, encoding="utf-8") as f:
                docs[os.path.basename(path)] = json.load(f)
        except ValueError as e:
            ck.fail("%s is not valid JSON: %s" % (os.path.relpath(path, top), e))
    for need in ("azuredeploy.json", "workbook.json", "analytics-rule.json"):
        if need not in docs:
            ck.fail("deploy/azure/%s is missing or invalid" % need)
    if ck.failures:
        return 1
    ck.ok("parsed %s" % ", ".join(sorted(docs)))
    tpl, workbook, rule = (docs["azuredeploy.json"], docs["workbook.json"],
                           docs["analytics-rule.json"])

    if args.fix:
        fix_workbook(os.path.join(azure, "azuredeploy.json"), tpl, workbook)
        print("rewrote the workbook embedded in deploy/azure/azuredeploy.json")

    for name, d in sorted(docs.items()):
        if "deploymentTemplate.json" in d.get("$schema", ""):
            lint_template(ck, d, name)
    columns = check_template(ck, top, tpl, workbook)
    if not columns:
        return 1
    check_emitted(ck, top, args.bin, columns)
    check_rule(ck, rule, columns)
    check_workbook(ck, workbook, columns)
    refs = 0
    before = len(ck.failures)
    queries = kql_sources(ck, top, azure, workbook, rule)
    for label, q in queries:
        refs += lint_kql(ck, label, q, columns)
    if not queries:
        ck.fail("no KQL query reads %s" % TABLE)
    elif len(ck.failures) == before:
        ck.ok("%d KQL queries reference only existing columns (%d column "
              "references)" % (len(queries), refs))

    if ck.failures:
        print("check_deploy: %d check(s) failed" % len(ck.failures))
        return 1
    print("check_deploy: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
