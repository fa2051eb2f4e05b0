/*
 * config.c: the YAML configuration file into a validated struct config.
 *
 * Every key is one row of the table `keys` below: its section, name, type,
 * default (as it would be written in the file, parsed by the same code),
 * field offset, bounds, flags and help text, in the manner of fluent-bit's
 * config_map. Parsing, range checks, defaults, printing and secret handling
 * all walk that table, so a new key is one row plus, at most, a rule in
 * validate() when its need depends on other keys.
 *
 * Loading is two passes over the text with libyaml: the event parser first
 * checks syntax, nesting depth and that there is one document (so that a
 * hostile file cannot make the document loader build a huge tree), then the
 * document API gives nodes with their line and column. Errors are collected
 * (up to CONFIG_MAX_ERRORS) rather than stopping at the first, each as
 * "FILE:LINE:COL: KEY: REASON". A secret's value is never part of a
 * message, and memory that held one is zeroed before it is freed.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#include "buf.h"
#include "config_value.h"
#include "err.h"
#include "log.h"

#define CONFIG_MAX_ERRORS 50
#define CONFIG_MAX_ERROR_BYTES (64 * 1024)
#define CONFIG_MAX_DEPTH 16
#define CONFIG_KEY_MAX 96

/* Enum fields are written through an int pointer by the table code. */
_Static_assert(sizeof(enum config_auth) == sizeof(int), "enum size");
_Static_assert(sizeof(enum config_after_ingest) == sizeof(int), "enum size");
_Static_assert(sizeof(enum config_start_from) == sizeof(int), "enum size");
_Static_assert(sizeof(enum config_dest_type) == sizeof(int), "enum size");
_Static_assert(sizeof(enum config_compression) == sizeof(int), "enum size");
_Static_assert(sizeof(enum config_cred_method) == sizeof(int), "enum size");
_Static_assert(sizeof(enum log_level) == sizeof(int), "enum size");
_Static_assert(sizeof(enum log_format) == sizeof(int), "enum size");

enum section {
  SEC_SOURCE,
  SEC_DESTINATION,
  SEC_CREDENTIAL,
  SEC_STATE,
  SEC_TLS,
  SEC_METRICS,
  SEC_LOG,
  SEC_TOP,       /* keys at the top level, outside any section */
  SEC_COUNT
};

static const char *const section_names[SEC_TOP] = {
  "source", "destination", "credential", "state", "tls", "metrics", "log",
};

enum key_type {
  KT_STRING,     /* char *, checked by the row's check function */
  KT_UINT,       /* unsigned, within [min, max] */
  KT_DURATION,   /* uint64_t milliseconds, within [min, max] */
  KT_SIZE,       /* uint64_t bytes, within [min, max] */
  KT_ENUM,       /* an enum, by name */
  KT_LIST,       /* struct config_strlist of checked strings */
  KT_START       /* enum config_start_from + int64_t time at off2 */
};

#define KF_SECRET 1u    /* never shown; also accepts X_file */
#define KF_NONEMPTY 2u  /* "" is refused (the default is never empty) */

struct enum_name {
  const char *name;
  int value;
};

/*
 * Validates, and may normalize in place (only ever shortening), a string
 * value. Returns 0, or -1 with a reason in why. A check for a secret never
 * puts the value in why.
 */
typedef int (*check_fn)(char *s, char *why, size_t whycap);

struct key {
  enum section section;
  const char *name;
  enum key_type type;
  unsigned flags;
  const char *def;                 /* NULL: "" / empty list */
  size_t off;                      /* the field in struct config */
  size_t off2;                     /* secrets: the X_file path field;
                                      KT_START: the int64_t time */
  uint64_t min, max;
  const struct enum_name *names;   /* KT_ENUM, NULL-terminated */
  check_fn check;                  /* KT_STRING and KT_LIST items */
  const char *help;
};

static const struct enum_name auth_names[] = {
  { "auto", CONFIG_AUTH_AUTO }, { "shared_key", CONFIG_AUTH_SHARED_KEY },
  { "sas", CONFIG_AUTH_SAS }, { "entra", CONFIG_AUTH_ENTRA }, { NULL, 0 },
};
static const struct enum_name after_names[] = {
  { "keep", CONFIG_AFTER_INGEST_KEEP },
  { "delete", CONFIG_AFTER_INGEST_DELETE }, { NULL, 0 },
};
static const struct enum_name dest_names[] = {
  { "logs_ingestion", CONFIG_DEST_LOGS_INGESTION },
  { "file", CONFIG_DEST_FILE }, { NULL, 0 },
};
static const struct enum_name compression_names[] = {
  { "gzip", CONFIG_COMPRESSION_GZIP }, { "none", CONFIG_COMPRESSION_NONE },
  { NULL, 0 },
};
static const struct enum_name method_names[] = {
  { "default", CONFIG_CRED_DEFAULT },
  { "client_secret", CONFIG_CRED_CLIENT_SECRET },
  { "client_certificate", CONFIG_CRED_CLIENT_CERTIFICATE },
  { "workload_identity", CONFIG_CRED_WORKLOAD_IDENTITY },
  { "managed_identity", CONFIG_CRED_MANAGED_IDENTITY }, { NULL, 0 },
};
static const struct enum_name level_names[] = {
  { "error", LOG_ERROR }, { "warn", LOG_WARN }, { "info", LOG_INFO },
  { "debug", LOG_DEBUG }, { NULL, 0 },
};
static const struct enum_name format_names[] = {
  { "text", LOG_FORMAT_TEXT }, { "json", LOG_FORMAT_JSON }, { NULL, 0 },
};

static int check_text(char *s, char *why, size_t whycap);
static int check_token(char *s, char *why, size_t whycap);
static int check_secret(char *s, char *why, size_t whycap);
static int check_sas(char *s, char *why, size_t whycap);
static int check_account(char *s, char *why, size_t whycap);
static int check_container(char *s, char *why, size_t whycap);
static int check_url(char *s, char *why, size_t whycap);
static int check_ident(char *s, char *why, size_t whycap);
static int check_tenant(char *s, char *why, size_t whycap);
static int check_listen(char *s, char *why, size_t whycap);
static int check_suffix(char *s, char *why, size_t whycap);

#define F(m) offsetof(struct config, m)
#define SECOND 1000ULL
#define MINUTE (60 * SECOND)
#define HOUR (60 * MINUTE)
#define DAY (24 * HOUR)
#define KIB 1024ULL
#define MIB (1024 * KIB)
#define GIB (1024 * MIB)

/* The table. Rows of a section are printed in this order. */
static const struct key keys[] = {
  { SEC_SOURCE, "connection_string", KT_STRING, KF_SECRET, NULL,
    F(source.connection_string), F(source.connection_string_file), 0, 0,
    NULL, check_secret,
    "Azure Storage connection string; replaces account, endpoint, "
    "account_key and sas_token" },
  { SEC_SOURCE, "account", KT_STRING, 0, NULL, F(source.account), 0, 0, 0,
    NULL, check_account, "storage account name" },
  { SEC_SOURCE, "endpoint", KT_STRING, 0, NULL, F(source.endpoint), 0, 0, 0,
    NULL, check_url,
    "blob endpoint; default https://ACCOUNT.blob.core.windows.net" },
  { SEC_SOURCE, "auth", KT_ENUM, 0, "auto", F(source.auth), 0, 0, 0,
    auth_names, NULL,
    "auto | shared_key | sas | entra; auto: by which secret is set" },
  { SEC_SOURCE, "account_key", KT_STRING, KF_SECRET, NULL,
    F(source.account_key), F(source.account_key_file), 0, 0, NULL,
    check_secret, "storage account key, for auth shared_key" },
  { SEC_SOURCE, "sas_token", KT_STRING, KF_SECRET, NULL,
    F(source.sas_token), F(source.sas_token_file), 0, 0, NULL, check_sas,
    "SAS token (query string), for auth sas" },
  { SEC_SOURCE, "container", KT_STRING, 0, NULL, F(source.container), 0, 0,
    0, NULL, check_container, "container holding the reports (required)" },
  { SEC_SOURCE, "prefix", KT_STRING, 0, NULL, F(source.prefix), 0, 0, 0,
    NULL, check_text, "only blobs whose name starts with this" },
  { SEC_SOURCE, "suffixes", KT_LIST, 0, NULL, F(source.suffixes), 0, 0, 0,
    NULL, check_suffix,
    "only blobs whose name ends with one of these; [] means every blob" },
  { SEC_SOURCE, "poll_interval", KT_DURATION, 0, "30s",
    F(source.poll_interval_ms), 0, 1 * SECOND, 1 * DAY, NULL, NULL,
    "time between two listings of the container" },
  { SEC_SOURCE, "download_concurrency", KT_UINT, 0, "8",
    F(source.download_concurrency), 0, 1, 64, NULL, NULL,
    "blobs downloaded at the same time" },
  { SEC_SOURCE, "max_blob_bytes", KT_SIZE, 0, "512MiB",
    F(source.max_blob_bytes), 0, 1 * KIB, 4 * GIB, NULL, NULL,
    "larger blobs are bad input (dead-lettered, not read)" },
  { SEC_SOURCE, "after_ingest", KT_ENUM, 0, "keep", F(source.after_ingest),
    0, 0, 0, after_names, NULL,
    "keep | delete: what to do with a blob once ingested" },
  { SEC_SOURCE, "start_from", KT_START, 0, "beginning",
    F(source.start_from), F(source.start_time), 0, 0, NULL, NULL,
    "beginning | now | an RFC 3339 time: which existing blobs to ingest" },

  { SEC_DESTINATION, "type", KT_ENUM, 0, "logs_ingestion",
    F(destination.type), 0, 0, 0, dest_names, NULL,
    "logs_ingestion | file (NDJSON, for dry runs)" },
  { SEC_DESTINATION, "endpoint", KT_STRING, 0, NULL,
    F(destination.endpoint), 0, 0, 0, NULL, check_url,
    "logs ingestion endpoint of the DCE or DCR (type logs_ingestion)" },
  { SEC_DESTINATION, "dcr_immutable_id", KT_STRING, 0, NULL,
    F(destination.dcr_immutable_id), 0, 0, 0, NULL, check_ident,
    "immutable id of the data collection rule, dcr-... (type "
    "logs_ingestion)" },
  { SEC_DESTINATION, "stream", KT_STRING, KF_NONEMPTY,
    "Custom-SpectraDetectLogs_CL", F(destination.stream), 0, 0, 0, NULL,
    check_ident, "stream declared in the data collection rule" },
  { SEC_DESTINATION, "path", KT_STRING, 0, NULL, F(destination.path), 0, 0,
    0, NULL, check_text, "NDJSON output file (type file)" },
  { SEC_DESTINATION, "compression", KT_ENUM, 0, "gzip",
    F(destination.compression), 0, 0, 0, compression_names, NULL,
    "gzip | none: request body encoding" },
  { SEC_DESTINATION, "max_request_bytes", KT_SIZE, 0, "1000000",
    F(destination.max_request_bytes), 0, 4 * KIB,
    CONFIG_API_MAX_REQUEST_BYTES, NULL, NULL,
    "uncompressed JSON per request; the API refuses more than 1MiB" },
  { SEC_DESTINATION, "max_field_bytes", KT_SIZE, 0, "65536",
    F(destination.max_field_bytes), 0, 256, 64 * KIB, NULL, NULL,
    "larger values are shrunk to valid JSON (Azure truncates at 64 KB)" },
  { SEC_DESTINATION, "concurrency", KT_UINT, 0, "4",
    F(destination.concurrency), 0, 1, 64, NULL, NULL,
    "requests in flight at the same time" },
  { SEC_DESTINATION, "timeout", KT_DURATION, 0, "60s",
    F(destination.timeout_ms), 0, 1 * SECOND, 10 * MINUTE, NULL, NULL,
    "time limit of one request" },

  { SEC_CREDENTIAL, "method", KT_ENUM, 0, "default", F(credential.method),
    0, 0, 0, method_names, NULL,
    "default | client_secret | client_certificate | workload_identity | "
    "managed_identity" },
  { SEC_CREDENTIAL, "tenant_id", KT_STRING, 0, NULL,
    F(credential.tenant_id), 0, 0, 0, NULL, check_tenant,
    "Entra tenant (GUID or domain); default: $AZURE_TENANT_ID" },
  { SEC_CREDENTIAL, "client_id", KT_STRING, 0, NULL,
    F(credential.client_id), 0, 0, 0, NULL, check_token,
    "application (client) id, or a user-assigned managed identity" },
  { SEC_CREDENTIAL, "object_id", KT_STRING, 0, NULL,
    F(credential.object_id), 0, 0, 0, NULL, check_token,
    "user-assigned managed identity, by object id" },
  { SEC_CREDENTIAL, "resource_id", KT_STRING, 0, NULL,
    F(credential.resource_id), 0, 0, 0, NULL, check_token,
    "user-assigned managed identity, by ARM resource id" },
  { SEC_CREDENTIAL, "client_secret", KT_STRING, KF_SECRET, NULL,
    F(credential.client_secret), F(credential.client_secret_file), 0, 0,
    NULL, check_secret, "client secret, for method client_secret" },
  { SEC_CREDENTIAL, "certificate_file", KT_STRING, 0, NULL,
    F(credential.certificate_file), 0, 0, 0, NULL, check_text,
    "PEM file with certificate and private key (client_certificate)" },
  { SEC_CREDENTIAL, "authority_host", KT_STRING, KF_NONEMPTY,
    "https://login.microsoftonline.com", F(credential.authority_host), 0,
    0, 0, NULL, check_url, "Entra ID authority (sovereign clouds differ)" },
  { SEC_CREDENTIAL, "scope", KT_STRING, KF_NONEMPTY,
    "https://monitor.azure.com//.default", F(credential.scope), 0, 0, 0,
    NULL, check_token, "token scope for the Logs Ingestion API" },
  { SEC_CREDENTIAL, "storage_scope", KT_STRING, KF_NONEMPTY,
    "https://storage.azure.com/.default", F(credential.storage_scope), 0, 0,
    0, NULL, check_token, "token scope for Azure Storage (auth entra)" },
  { SEC_CREDENTIAL, "imds_endpoint", KT_STRING, KF_NONEMPTY,
    "http://169.254.169.254", F(credential.imds_endpoint), 0, 0, 0, NULL,
    check_url, "instance metadata service (managed identity)" },

  { SEC_STATE, "directory", KT_STRING, KF_NONEMPTY,
    "/var/lib/spectra-sentinel", F(state.directory), 0, 0, 0, NULL,
    check_text, "checkpoint and dead-letter/ directory" },
  { SEC_STATE, "grace", KT_DURATION, 0, "1h", F(state.grace_ms), 0,
    1 * SECOND, 7 * DAY, NULL, NULL,
    "Last-Modified window kept in the checkpoint" },

  { SEC_TLS, "ca_file", KT_STRING, 0, NULL, F(tls.ca_file), 0, 0, 0, NULL,
    check_text, "extra CA bundle (PEM); verification is always on" },

  { SEC_METRICS, "listen", KT_STRING, 0, "127.0.0.1:9464",
    F(metrics.listen), 0, 0, 0, NULL, check_listen,
    "HOST:PORT for /metrics, /healthz, /readyz; \"\" disables" },

  { SEC_LOG, "level", KT_ENUM, 0, "info", F(log.level), 0, 0, 0,
    level_names, NULL, "error | warn | info | debug" },
  { SEC_LOG, "format", KT_ENUM, 0, "text", F(log.format), 0, 0, 0,
    format_names, NULL, "text | json" },

  { SEC_TOP, "shutdown_timeout", KT_DURATION, 0, "30s",
    F(shutdown_timeout_ms), 0, 1 * SECOND, 1 * HOUR, NULL, NULL,
    "time to finish in-flight work after SIGTERM" },
};

#define NKEYS (sizeof(keys) / sizeof(keys[0]))

/* What the loader saw of one key: [0] the key itself, [1] its X_file. */
struct keystate {
  unsigned char seen[2];
  unsigned char set[2];          /* seen and gave a non-empty value */
  yaml_mark_t key_mark[2];
  yaml_mark_t val_mark[2];
  char unset_var[CONFIG_VAR_MAX + 1];  /* a whole ${VAR} that was empty */
};

struct loader {
  const char *name;
  const unsigned char *data;
  size_t len;
  struct config *c;
  struct buf errs;
  unsigned nerrs;
  int nomem;
  int stop;                      /* too many errors: stop walking */
  int sec_seen[SEC_COUNT];
  yaml_mark_t sec_mark[SEC_COUNT];
  struct keystate ks[NKEYS];
  char inline_secret[CONFIG_KEY_MAX];  /* first secret written in the file */
  struct buf val;                /* scratch: the expanded scalar */
  struct buf file;               /* scratch: an X_file's contents */
};

/* Frees a string that may hold a secret, zeroing it first. */
static void
free_secret(char *s)
{
  if(s) {
    explicit_bzero(s, strlen(s));
    free(s);
  }
}

/* Zeroes all of b's allocation (it may have held a secret) and frees it. */
static void
buf_wipe(struct buf *b)
{
  if(b->data)
    explicit_bzero(b->data, b->cap);
  buf_free(b);
}

static char **
str_field(const struct config *c, size_t off)
{
  return (char **)((char *)c + off);
}

static void *
field(struct config *c, size_t off)
{
  return (char *)c + off;
}

/* Replaces the string at *slot by v (owned, stolen). */
static void
replace_str(char **slot, char *v, int secret)
{
  if(secret)
    free_secret(*slot);
  else
    free(*slot);
  *slot = v;
}

static void
key_path(const struct key *k, int file, char *out, size_t cap)
{
  if(k->section == SEC_TOP)
    snprintf(out, cap, "%s%s", k->name, file ? "_file" : "");
  else
    snprintf(out, cap, "%s.%s%s", section_names[k->section], k->name,
             file ? "_file" : "");
}

static int
key_index(enum section sec, const char *name)
{
  for(size_t i = 0; i < NKEYS; i++) {
    if(keys[i].section == sec && !strcmp(keys[i].name, name))
      return (int)i;
  }
  return -1;
}

/*
 * Whether s looks like a secret written under the wrong key: an account
 * key, a SAS token, a client secret or an access token pasted where a name,
 * a URL or a duration belongs. Messages do not repeat such a value: secrets
 * are registered with the log scrubber only once the configuration has
 * loaded, so nothing else would keep this one out of the journal. The rule
 * is deliberately broad (16 bytes or more without spaces mixing upper case,
 * lower case and digits, or anything holding a SAS signature or a
 * connection string's key) and cannot hide what a message is about: the
 * file, line, column and key are always given.
 */
static int
looks_secret(const char *s)
{
  static const char *const marks[] = {
    "sig=", "accountkey=", "sharedaccesssignature=", "client_secret=",
    "bearer "
  };
  int up = 0, low = 0, dig = 0;
  size_t n = 0;

  for(size_t i = 0; i < sizeof(marks) / sizeof(marks[0]); i++) {
    if(strcasestr(s, marks[i]))
      return 1;
  }
  if(strstr(s, "://"))
    return 0; /* a URL without a signature in it */
  for(const char *p = s; *p; p++, n++) {
    unsigned char ch = (unsigned char)*p;

    if(ch == ' ' || ch == '\t')
      return 0;
    up |= ch >= 'A' && ch <= 'Z';
    low |= ch >= 'a' && ch <= 'z';
    dig |= ch >= '0' && ch <= '9';
  }
  return n >= 16 && up && low && dig;
}

/*
 * Writes s into out as a double-quoted, escaped and (past 80 bytes) cut
 * string, for a message; a value that looks like a secret (looks_secret)
 * is replaced by its length.
 */
static const char *
quoted(const char *s, char *out, size_t cap)
{
  static const char hex[] = "0123456789abcdef";
  size_t o = 0;

  if(looks_secret(s)) {
    snprintf(out, cap, "(a value of %zu bytes that looks like a secret, "
             "not shown)", strlen(s));
    return out;
  }
  out[o++] = '"';
  for(; *s && o + 8 < cap; s++) {
    unsigned char ch = (unsigned char)*s;

    if(o > 80) {
      memcpy(out + o, "...", 3);
      o += 3;
      break;
    }
    if(ch == '"' || ch == '\\') {
      out[o++] = '\\';
      out[o++] = (char)ch;
    }
    else if(ch < 0x20 || ch == 0x7f) {
      out[o++] = '\\';
      out[o++] = 'x';
      out[o++] = hex[ch >> 4];
      out[o++] = hex[ch & 15];
    }
    else
      out[o++] = (char)ch;
  }
  out[o++] = '"';
  out[o] = '\0';
  return out;
}

/* ---- string checks ---------------------------------------------------- */

static int
has_ctl(const char *s)
{
  for(; *s; s++) {
    if((unsigned char)*s < 0x20 || *s == 0x7f)
      return 1;
  }
  return 0;
}

static int
check_text(char *s, char *why, size_t whycap)
{
  char q[128];

  if(has_ctl(s)) {
    snprintf(why, whycap, "invalid value %s (control characters are not "
             "allowed)", quoted(s, q, sizeof(q)));
    return -1;
  }
  return 0;
}

static int
check_token(char *s, char *why, size_t whycap)
{
  char q[128];

  for(const char *p = s; *p; p++) {
    if((unsigned char)*p <= 0x20 || *p == 0x7f) {
      snprintf(why, whycap, "invalid value %s (spaces and control "
               "characters are not allowed)", quoted(s, q, sizeof(q)));
      return -1;
    }
  }
  return 0;
}

static int
check_suffix(char *s, char *why, size_t whycap)
{
  if(!*s) {
    snprintf(why, whycap, "an empty suffix matches every blob; use [] "
             "for that");
    return -1;
  }
  return check_text(s, why, whycap);
}

static int
check_secret(char *s, char *why, size_t whycap)
{
  if(!strcmp(s, CONFIG_REDACTED)) {
    snprintf(why, whycap, "is the placeholder %s written by config_print; "
             "supply the secret itself", CONFIG_REDACTED);
    return -1;
  }
  if(has_ctl(s)) {
    snprintf(why, whycap, "contains a control character (the value is a "
             "secret and not shown)");
    return -1;
  }
  return 0;
}

static int
check_sas(char *s, char *why, size_t whycap)
{
  int rc = check_secret(s, why, whycap);

  /* Portal-copied tokens start with '?'; the URL builder adds its own. */
  if(!rc && s[0] == '?')
    memmove(s, s + 1, strlen(s));
  return rc;
}

static int
check_account(char *s, char *why, size_t whycap)
{
  size_t n = strlen(s);
  char q[128];

  if(!n)
    return 0;
  for(const char *p = s; *p; p++) {
    if(!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9')))
      n = 0;
  }
  if(n < 3 || n > 24) {
    snprintf(why, whycap, "invalid storage account name %s (3 to 24 "
             "lowercase letters and digits)", quoted(s, q, sizeof(q)));
    return -1;
  }
  return 0;
}

static int
check_container(char *s, char *why, size_t whycap)
{
  size_t n = strlen(s);
  int ok = n >= 3 && n <= 63;
  char q[128];

  if(!n || !strcmp(s, "$root"))
    return 0;
  for(size_t i = 0; ok && i < n; i++) {
    char ch = s[i];

    if(ch == '-')
      ok = i > 0 && i + 1 < n && s[i - 1] != '-';
    else
      ok = (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9');
  }
  if(!ok) {
    snprintf(why, whycap, "invalid container name %s (3 to 63 lowercase "
             "letters, digits and single hyphens, starting and ending with "
             "a letter or digit)", quoted(s, q, sizeof(q)));
    return -1;
  }
  return 0;
}

/*
 * URLs are http(s)://HOST[:PORT][/PATH] with no query, fragment or user
 * information; trailing slashes are removed so that callers can append
 * "/path" without doubling it.
 */
static int
check_url(char *s, char *why, size_t whycap)
{
  size_t skip, hostlen, n;
  char q[128];

  if(!*s)
    return 0;
  if(!strncasecmp(s, "https://", 8))
    skip = 8;
  else if(!strncasecmp(s, "http://", 7))
    skip = 7;
  else
    goto bad;
  hostlen = strcspn(s + skip, "/");
  if(!hostlen)
    goto bad;
  if(memchr(s + skip, '@', hostlen)) {
    /* User information may be a password: do not echo the value. */
    snprintf(why, whycap, "invalid URL (user information before '@' is "
             "not allowed; the value is not shown)");
    return -1;
  }
  for(const char *p = s; *p; p++) {
    if((unsigned char)*p <= 0x20 || *p == 0x7f || *p == '?' || *p == '#' ||
       *p == '\\')
      goto bad;
  }
  n = strlen(s);
  while(n > skip + hostlen && s[n - 1] == '/')
    s[--n] = '\0';
  return 0;
bad:
  snprintf(why, whycap, "invalid URL %s (expected http:// or https://, a "
           "host, an optional port and path, and no query)",
           quoted(s, q, sizeof(q)));
  return -1;
}

static int
check_ident(char *s, char *why, size_t whycap)
{
  char q[128];

  for(const char *p = s; *p; p++) {
    if(!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
         (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' || *p == '.')) {
      snprintf(why, whycap, "invalid value %s (letters, digits, '-', '_' "
               "and '.' only)", quoted(s, q, sizeof(q)));
      return -1;
    }
  }
  return 0;
}

static int
check_tenant(char *s, char *why, size_t whycap)
{
  char q[128];

  for(const char *p = s; *p; p++) {
    if(!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
         (*p >= '0' && *p <= '9') || *p == '-' || *p == '.')) {
      snprintf(why, whycap, "invalid tenant id %s (a GUID or a domain "
               "such as contoso.onmicrosoft.com)", quoted(s, q, sizeof(q)));
      return -1;
    }
  }
  return 0;
}

/*
 * Splits "HOST:PORT" or "[V6]:PORT" into host (without brackets, at most
 * hostcap - 1 bytes) and port. Returns 0 or -1.
 */
static int
split_listen(const char *s, char *host, size_t hostcap, unsigned *port)
{
  const char *h, *colon, *p;
  size_t hl;
  unsigned long v = 0;

  if(s[0] == '[') {
    const char *end = strchr(s, ']');

    if(!end || end[1] != ':')
      return -1;
    h = s + 1;
    hl = (size_t)(end - h);
    colon = end + 1;
    for(p = h; p < end; p++) {
      if(!strchr("0123456789abcdefABCDEF:.%", *p))
        return -1;
    }
  }
  else {
    colon = strrchr(s, ':');
    if(!colon)
      return -1;
    h = s;
    hl = (size_t)(colon - s);
    for(p = h; p < colon; p++) {
      if(!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
           (*p >= '0' && *p <= '9') || *p == '-' || *p == '.'))
        return -1;
    }
  }
  if(!hl || hl >= hostcap)
    return -1;
  p = colon + 1;
  if(!*p || strlen(p) > 5)
    return -1;
  for(; *p; p++) {
    if(*p < '0' || *p > '9')
      return -1;
    v = v * 10 + (unsigned long)(*p - '0');
  }
  if(v > 65535)
    return -1;
  memcpy(host, h, hl);
  host[hl] = '\0';
  *port = (unsigned)v;
  return 0;
}

static int
check_listen(char *s, char *why, size_t whycap)
{
  char host[256], q[128];
  unsigned port;

  if(!*s || !split_listen(s, host, sizeof(host), &port))
    return 0;
  snprintf(why, whycap, "invalid listen address %s (expected HOST:PORT such "
           "as 127.0.0.1:9464 or [::1]:9464, or \"\" to disable)",
           quoted(s, q, sizeof(q)));
  return -1;
}

/* ---- values ----------------------------------------------------------- */

static void
format_bound(const struct key *k, uint64_t v, char *out, size_t cap)
{
  if(k->type == KT_DURATION)
    config_value_format_duration(v, out, cap);
  else if(k->type == KT_SIZE)
    config_value_format_size(v, out, cap);
  else
    snprintf(out, cap, "%llu", (unsigned long long)v);
}

static int
parse_uint(const char *s, uint64_t *out)
{
  uint64_t n = 0;

  if(!*s)
    return ERR_PARSE;
  for(; *s; s++) {
    unsigned d;

    if(*s < '0' || *s > '9')
      return ERR_PARSE;
    d = (unsigned)(*s - '0');
    if(n > (UINT64_MAX - d) / 10)
      return ERR_PARSE;
    n = n * 10 + d;
  }
  *out = n;
  return 0;
}

/*
 * Parses text as the value of key k and stores it in c. Returns 0,
 * ERR_PARSE with the reason in why, or ERR_NOMEM. c keeps its old value on
 * failure.
 */
static int
store_value(struct config *c, const struct key *k, const char *text,
            char *why, size_t whycap)
{
  char q[128], lo[32], hi[32];
  uint64_t n = 0;
  int rc = 0;

  switch(k->type) {
  case KT_STRING: {
    char *v = strdup(text);

    if(!v)
      return ERR_NOMEM;
    if(k->check && k->check(v, why, whycap))
      rc = ERR_PARSE;
    else if((k->flags & KF_NONEMPTY) && !*v) {
      snprintf(why, whycap, "must not be empty");
      rc = ERR_PARSE;
    }
    if(rc) {
      free_secret(v);
      return rc;
    }
    replace_str(str_field(c, k->off), v, k->flags & KF_SECRET);
    return 0;
  }
  case KT_UINT:
    if(parse_uint(text, &n)) {
      snprintf(why, whycap, "invalid number %s (expected a whole number)",
               quoted(text, q, sizeof(q)));
      return ERR_PARSE;
    }
    break;
  case KT_DURATION:
    if(config_parse_duration(text, &n)) {
      snprintf(why, whycap, "invalid duration %s (expected e.g. 500ms, 30s, "
               "5m, 1h)", quoted(text, q, sizeof(q)));
      return ERR_PARSE;
    }
    break;
  case KT_SIZE:
    if(config_parse_size(text, &n)) {
      snprintf(why, whycap, "invalid size %s (expected e.g. 1000000, "
               "64KiB, 512MiB, 1MB)", quoted(text, q, sizeof(q)));
      return ERR_PARSE;
    }
    break;
  case KT_ENUM: {
    struct buf list;

    for(const struct enum_name *e = k->names; e->name; e++) {
      if(!strcmp(text, e->name)) {
        *(int *)field(c, k->off) = e->value;
        return 0;
      }
    }
    buf_init(&list, 256);
    for(const struct enum_name *e = k->names; e->name; e++)
      (void)buf_printf(&list, "%s%s", e == k->names ? "" : ", ", e->name);
    snprintf(why, whycap, "invalid value %s (expected one of: %s)",
             quoted(text, q, sizeof(q)), list.data ? list.data : "");
    buf_free(&list);
    return ERR_PARSE;
  }
  case KT_START: {
    int64_t t = 0;
    int v;

    if(!strcmp(text, "beginning"))
      v = CONFIG_START_BEGINNING;
    else if(!strcmp(text, "now"))
      v = CONFIG_START_NOW;
    else if(!config_parse_time(text, &t))
      v = CONFIG_START_TIME;
    else {
      snprintf(why, whycap, "invalid value %s (expected beginning, now or "
               "an RFC 3339 time such as 2026-11-30T00:00:00Z)",
               quoted(text, q, sizeof(q)));
      return ERR_PARSE;
    }
    *(int *)field(c, k->off) = v;
    *(int64_t *)field(c, k->off2) = t;
    return 0;
  }
  case KT_LIST:
    return ERR_INVAL;
  }
  if(n < k->min || n > k->max) {
    format_bound(k, k->min, lo, sizeof(lo));
    format_bound(k, k->max, hi, sizeof(hi));
    snprintf(why, whycap, "%s is out of range (%s to %s)",
             quoted(text, q, sizeof(q)), lo, hi);
    return ERR_PARSE;
  }
  if(k->type == KT_UINT)
    *(unsigned *)field(c, k->off) = (unsigned)n;
  else
    *(uint64_t *)field(c, k->off) = n;
  return 0;
}

static void
strlist_free(struct config_strlist *l)
{
  for(size_t i = 0; i < l->n; i++)
    free(l->v[i]);
  free(l->v);
  l->v = NULL;
  l->n = 0;
}

/* Appends a copy of s to l. Returns 0 or ERR_NOMEM. */
static int
strlist_add(struct config_strlist *l, const char *s)
{
  char **nv, *copy = strdup(s);

  if(!copy)
    return ERR_NOMEM;
  nv = realloc(l->v, (l->n + 1) * sizeof(*nv));
  if(!nv) {
    free(copy);
    return ERR_NOMEM;
  }
  l->v = nv;
  l->v[l->n++] = copy;
  return 0;
}

/* ---- defaults, destroy ------------------------------------------------ */

/* Fills the fields derived from others: the split listen address. */
static int
derive_listen(struct config *c)
{
  struct config_metrics *m = &c->metrics;

  m->listen_host[0] = '\0';
  m->listen_port = 0;
  if(*m->listen &&
     split_listen(m->listen, m->listen_host, sizeof(m->listen_host),
                  &m->listen_port))
    return ERR_INVAL;
  return 0;
}

int
config_defaults(struct config **out)
{
  struct config *c = calloc(1, sizeof(*c));
  char why[256];
  int rc = ERR_NOMEM;

  *out = NULL;
  if(!c)
    return ERR_NOMEM;
  for(size_t i = 0; i < NKEYS; i++) {
    const struct key *k = &keys[i];

    if(k->type == KT_LIST)
      continue;
    rc = store_value(c, k, k->def ? k->def : "", why, sizeof(why));
    if(rc)
      goto out;
    if(k->flags & KF_SECRET) {
      char *e = strdup("");

      rc = ERR_NOMEM;
      if(!e)
        goto out;
      replace_str(str_field(c, k->off2), e, 0);
    }
  }
  rc = derive_listen(c);
out:
  if(rc) {
    config_destroy(c);
    return rc;
  }
  *out = c;
  return 0;
}

void
config_destroy(struct config *c)
{
  if(!c)
    return;
  for(size_t i = 0; i < NKEYS; i++) {
    const struct key *k = &keys[i];

    if(k->type == KT_STRING) {
      if(k->flags & KF_SECRET) {
        free_secret(*str_field(c, k->off));
        free(*str_field(c, k->off2));
      }
      else
        free(*str_field(c, k->off));
    }
    else if(k->type == KT_LIST)
      strlist_free(field(c, k->off));
  }
  free(c);
}

/* ---- errors ----------------------------------------------------------- */

/*
 * Adds "NAME:LINE:COL: KEY: MESSAGE" to the error list; m NULL means the
 * start of the file, key NULL leaves the key out.
 */
static void
error_at(struct loader *L, const yaml_mark_t *m, const char *key,
         const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void
error_at(struct loader *L, const yaml_mark_t *m, const char *key,
         const char *fmt, ...)
{
  va_list ap;
  size_t mark = L->errs.len;
  int rc;

  if(L->stop)
    return;
  if(++L->nerrs > CONFIG_MAX_ERRORS) {
    (void)buf_printf(&L->errs, "%s: too many errors; stopping\n", L->name);
    L->stop = 1;
    return;
  }
  rc = buf_printf(&L->errs, "%s:%zu:%zu: ", L->name, m ? m->line + 1 : 1,
                  m ? m->column + 1 : 1);
  if(!rc && key)
    rc = buf_printf(&L->errs, "%s: ", key);
  if(!rc) {
    va_start(ap, fmt);
    rc = buf_vprintf(&L->errs, fmt, ap);
    va_end(ap);
  }
  if(!rc)
    rc = buf_putc(&L->errs, '\n');
  if(rc == ERR_NOMEM)
    L->nomem = 1;
  if(rc) {
    /* The list is full: keep what fits, and stop. */
    buf_truncate(&L->errs, mark);
    L->stop = 1;
  }
}

/* Where to report a key: the key itself, else its section, else 1:1. */
static const yaml_mark_t *
key_mark(const struct loader *L, int idx)
{
  const struct keystate *st = &L->ks[idx];

  if(st->seen[0])
    return &st->key_mark[0];
  if(st->seen[1])
    return &st->key_mark[1];
  if(L->sec_seen[keys[idx].section])
    return &L->sec_mark[keys[idx].section];
  return NULL;
}

/* Reports key idx as missing, with why and a hint about an empty ${VAR}. */
static void
missing(struct loader *L, int idx, const char *why)
{
  char path[CONFIG_KEY_MAX], hint[CONFIG_VAR_MAX + 64] = "";

  key_path(&keys[idx], 0, path, sizeof(path));
  if(L->ks[idx].unset_var[0])
    snprintf(hint, sizeof(hint), " (${%s} is not set or empty)",
             L->ks[idx].unset_var);
  error_at(L, key_mark(L, idx), path, "%s%s", why, hint);
}

/* Reports that key idx (set) must not be used, with why. */
static void
conflict(struct loader *L, int idx, const char *why)
{
  char path[CONFIG_KEY_MAX];
  int v = L->ks[idx].set[0] ? 0 : 1;

  key_path(&keys[idx], v, path, sizeof(path));
  error_at(L, &L->ks[idx].key_mark[v], path, "%s", why);
}

static size_t
edit_distance(const char *a, const char *b)
{
  size_t la = strlen(a), lb = strlen(b), prev[65], cur[65];

  if(la > 64 || lb > 64)
    return (size_t)-1;
  for(size_t j = 0; j <= lb; j++)
    prev[j] = j;
  for(size_t i = 1; i <= la; i++) {
    cur[0] = i;
    for(size_t j = 1; j <= lb; j++) {
      size_t best = prev[j] + 1;

      if(cur[j - 1] + 1 < best)
        best = cur[j - 1] + 1;
      if(prev[j - 1] + (a[i - 1] != b[j - 1]) < best)
        best = prev[j - 1] + (a[i - 1] != b[j - 1]);
      cur[j] = best;
    }
    memcpy(prev, cur, (lb + 1) * sizeof(prev[0]));
  }
  return prev[lb];
}

/* Considers cand as a suggestion for name; keeps the closest in *best. */
static void
consider(const char *name, const char *cand, const char *suffix,
         char *best, size_t cap, size_t *bestd)
{
  char full[CONFIG_KEY_MAX];
  size_t d;

  snprintf(full, sizeof(full), "%s%s", cand, suffix);
  d = edit_distance(name, full);
  if(d < *bestd && d <= 2 && d * 3 <= strlen(full)) {
    *bestd = d;
    snprintf(best, cap, "%s", full);
  }
}

/* Reports an unknown key name in section sec (SEC_TOP: the top level). */
static void
unknown_key(struct loader *L, enum section sec, const char *name,
            const yaml_mark_t *m)
{
  char path[CONFIG_KEY_MAX + 64], best[CONFIG_KEY_MAX] = "";
  size_t bestd = (size_t)-1;

  if(looks_secret(name))
    name = "(a name that looks like a secret)";
  if(sec == SEC_TOP) {
    snprintf(path, sizeof(path), "%.*s", CONFIG_KEY_MAX, name);
    for(int s = 0; s < SEC_TOP; s++)
      consider(name, section_names[s], "", best, sizeof(best), &bestd);
  }
  else
    snprintf(path, sizeof(path), "%s.%.*s", section_names[sec],
             CONFIG_KEY_MAX, name);
  for(size_t i = 0; i < NKEYS; i++) {
    if(keys[i].section != sec)
      continue;
    consider(name, keys[i].name, "", best, sizeof(best), &bestd);
    if(keys[i].flags & KF_SECRET)
      consider(name, keys[i].name, "_file", best, sizeof(best), &bestd);
  }
  if(*best) {
    error_at(L, m, path, "unknown key (did you mean %s?)", best);
    return;
  }
  /* A key of another section, written in the wrong place. */
  for(size_t i = 0; i < NKEYS; i++) {
    if(keys[i].section != sec && !strcmp(keys[i].name, name)) {
      char where[CONFIG_KEY_MAX];

      key_path(&keys[i], 0, where, sizeof(where));
      error_at(L, m, path, "unknown key (did you mean %s?)", where);
      return;
    }
  }
  error_at(L, m, path, "unknown key");
}

/* ---- YAML walking ----------------------------------------------------- */

static int
is_null(const yaml_node_t *n)
{
  const char *v;

  if(n->type != YAML_SCALAR_NODE || n->data.scalar.style !=
     YAML_PLAIN_SCALAR_STYLE)
    return 0;
  v = (const char *)n->data.scalar.value;
  return !*v || !strcmp(v, "~") || !strcmp(v, "null") ||
         !strcmp(v, "Null") || !strcmp(v, "NULL");
}

static const char *
node_kind(const yaml_node_t *n)
{
  switch(n->type) {
  case YAML_MAPPING_NODE: return "a mapping";
  case YAML_SEQUENCE_NODE: return "a list";
  default: return "a single value";
  }
}

/*
 * Expands the scalar node n into L->val. Returns 0 (with *info filled),
 * or ERR_PARSE after reporting the error at n for the key path.
 */
static int
expand_node(struct loader *L, const yaml_node_t *n, const char *path,
            struct config_expand *info)
{
  char why[256];
  int rc;

  if(strlen((const char *)n->data.scalar.value) != n->data.scalar.length) {
    error_at(L, &n->start_mark, path, "a NUL character is not allowed");
    return ERR_PARSE;
  }
  rc = config_value_expand((const char *)n->data.scalar.value, &L->val, info,
                           why, sizeof(why));
  if(rc == ERR_NOMEM)
    L->nomem = 1;
  else if(rc == ERR_TOOBIG)
    error_at(L, &n->start_mark, path, "value longer than %d bytes",
             CONFIG_MAX_VALUE_BYTES);
  else if(rc)
    error_at(L, &n->start_mark, path, "%s", why);
  return rc ? ERR_PARSE : 0;
}

/*
 * Reads the secret file named path (for key keypath, reported at m) into
 * L->file: at most CONFIG_MAX_SECRET_FILE_BYTES, a regular file, trailing
 * CR/LF trimmed, not empty. A relative path is taken from
 * $CREDENTIALS_DIRECTORY when that is set. Returns 0 or ERR_PARSE.
 */
static int
read_secret_file(struct loader *L, const char *keypath, const yaml_mark_t *m,
                 const char *path)
{
  const char *dir = getenv("CREDENTIALS_DIRECTORY");
  char full[PATH_MAX];
  struct stat st;
  int fd = -1, rc = ERR_PARSE;

  buf_reset(&L->file);
  if(path[0] != '/' && dir && *dir) {
    if((size_t)snprintf(full, sizeof(full), "%s/%s", dir, path) >=
       sizeof(full)) {
      error_at(L, m, keypath, "path too long");
      goto out;
    }
  }
  else if((size_t)snprintf(full, sizeof(full), "%s", path) >= sizeof(full)) {
    error_at(L, m, keypath, "path too long");
    goto out;
  }
  /* O_NONBLOCK: a FIFO or device named by mistake must not hang us; only
     regular files are accepted below. */
  fd = open(full, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if(fd < 0) {
    error_at(L, m, keypath, "cannot open %s: %s", full, strerror(errno));
    goto out;
  }
  if(fstat(fd, &st) || !S_ISREG(st.st_mode)) {
    error_at(L, m, keypath, "%s is not a regular file", full);
    goto out;
  }
  if(st.st_size > CONFIG_MAX_SECRET_FILE_BYTES)
    goto toobig;
  for(;;) {
    char chunk[4096];
    ssize_t r = read(fd, chunk, sizeof(chunk));
    int brc;

    if(r < 0 && errno == EINTR)
      continue;
    if(r < 0) {
      error_at(L, m, keypath, "cannot read %s: %s", full, strerror(errno));
      explicit_bzero(chunk, sizeof(chunk));
      goto out;
    }
    if(r == 0)
      break;
    brc = buf_append(&L->file, chunk, (size_t)r);
    explicit_bzero(chunk, sizeof(chunk));
    if(brc == ERR_TOOBIG)
      goto toobig;
    if(brc) {
      L->nomem = 1;
      goto out;
    }
  }
  while(L->file.len && (L->file.data[L->file.len - 1] == '\n' ||
                        L->file.data[L->file.len - 1] == '\r'))
    buf_truncate(&L->file, L->file.len - 1);
  if(!L->file.len) {
    error_at(L, m, keypath, "%s is empty", full);
    goto out;
  }
  if(memchr(L->file.data, '\0', L->file.len)) {
    error_at(L, m, keypath, "%s contains a NUL byte", full);
    goto out;
  }
  if(st.st_mode & 077)
    log_warn("config", "%s: %s: %s holds a secret and is readable by group "
             "or others (mode %04o); make it readable by the service only",
             L->name, keypath, full, (unsigned)(st.st_mode & 07777));
  rc = 0;
  goto out;
toobig:
  error_at(L, m, keypath, "%s is larger than %d bytes", full,
           CONFIG_MAX_SECRET_FILE_BYTES);
out:
  if(fd >= 0)
    close(fd);
  return rc;
}

/* Stores the items of the sequence n as list key k. */
static void
set_list(struct loader *L, yaml_document_t *doc, const struct key *k,
         const char *path, yaml_node_t *n)
{
  struct config_strlist *l = field(L->c, k->off);
  struct config_expand info;
  char why[256];

  strlist_free(l);
  if(is_null(n))
    return;
  if(n->type != YAML_SEQUENCE_NODE) {
    error_at(L, &n->start_mark, path, "expected a list such as "
             "[\".json\", \".json.gz\"], found %s", node_kind(n));
    return;
  }
  for(yaml_node_item_t *it = n->data.sequence.items.start;
      it < n->data.sequence.items.top && !L->stop && !L->nomem; it++) {
    yaml_node_t *item = yaml_document_get_node(doc, *it);

    if(!item)
      continue;
    if(item->type != YAML_SCALAR_NODE) {
      error_at(L, &item->start_mark, path, "list items must be single "
               "values, found %s", node_kind(item));
      continue;
    }
    if(expand_node(L, item, path, &info))
      continue;
    if(info.whole_unset) {
      error_at(L, &item->start_mark, path, "environment variable %s is "
               "not set or empty", info.var);
      continue;
    }
    if(k->check(L->val.data, why, sizeof(why))) {
      error_at(L, &item->start_mark, path, "%s", why);
      continue;
    }
    if(strlist_add(l, L->val.data))
      L->nomem = 1;
  }
}

/*
 * Stores the value node v of key idx (file: its X_file form), whose key
 * node is kn.
 */
static void
set_leaf(struct loader *L, yaml_document_t *doc, int idx, int file,
         const yaml_node_t *kn, yaml_node_t *v)
{
  const struct key *k = &keys[idx];
  struct keystate *st = &L->ks[idx];
  struct config_expand info;
  char path[CONFIG_KEY_MAX], other[CONFIG_KEY_MAX], why[256];
  const char *text;
  int rc;

  key_path(k, file, path, sizeof(path));
  if(st->seen[file]) {
    error_at(L, &kn->start_mark, path, "duplicate key (first at line %zu)",
             st->key_mark[file].line + 1);
    return;
  }
  st->seen[file] = 1;
  st->key_mark[file] = kn->start_mark;
  st->val_mark[file] = v->start_mark;
  if(k->type == KT_LIST) {
    set_list(L, doc, k, path, v);
    return;
  }
  if(v->type != YAML_SCALAR_NODE) {
    error_at(L, &v->start_mark, path, "expected a single value, found %s",
             node_kind(v));
    return;
  }
  if(is_null(v))
    return;
  if(expand_node(L, v, path, &info))
    return;
  if(info.whole_unset) {
    snprintf(st->unset_var, sizeof(st->unset_var), "%s", info.var);
    return;
  }
  text = L->val.data;
  /* For a secret, "" means not set: it must neither conflict with nor
     overwrite a value that its other form gave. */
  if((k->flags & KF_SECRET) && !*text)
    return;
  if((k->flags & KF_SECRET) && st->set[!file]) {
    key_path(k, !file, other, sizeof(other));
    error_at(L, &kn->start_mark, path, "cannot be used together with %s",
             other);
    return;
  }
  if(file) {
    char *p;

    if(check_text(L->val.data, why, sizeof(why))) {
      error_at(L, &v->start_mark, path, "%s", why);
      return;
    }
    p = strdup(text);
    if(!p) {
      L->nomem = 1;
      return;
    }
    if(read_secret_file(L, path, &v->start_mark, p)) {
      free(p);
      return;
    }
    replace_str(str_field(L->c, k->off2), p, 0);
    text = L->file.data;
  }
  rc = store_value(L->c, k, text, why, sizeof(why));
  if(rc == ERR_NOMEM) {
    L->nomem = 1;
    return;
  }
  if(rc) {
    error_at(L, &v->start_mark, path, "%s", why);
    return;
  }
  if(k->type != KT_STRING || **str_field(L->c, k->off))
    st->set[file] = 1;
  if((k->flags & KF_SECRET) && !file && st->set[0] && !info.refs &&
     !L->inline_secret[0])
    snprintf(L->inline_secret, sizeof(L->inline_secret), "%s", path);
}

/* Walks the mapping n of section sec. */
static void
walk_section(struct loader *L, yaml_document_t *doc, enum section sec,
             yaml_node_t *n)
{
  for(yaml_node_pair_t *p = n->data.mapping.pairs.start;
      p < n->data.mapping.pairs.top && !L->stop && !L->nomem; p++) {
    yaml_node_t *kn = yaml_document_get_node(doc, p->key);
    yaml_node_t *vn = yaml_document_get_node(doc, p->value);
    const char *name;
    char base[CONFIG_KEY_MAX];
    size_t nl;
    int idx, file = 0;

    if(!kn || !vn)
      continue;
    if(kn->type != YAML_SCALAR_NODE) {
      error_at(L, &kn->start_mark, sec == SEC_TOP ? NULL : section_names[sec],
               "a key must be a name, found %s", node_kind(kn));
      continue;
    }
    name = (const char *)kn->data.scalar.value;
    if(sec == SEC_TOP) {
      int s;

      for(s = 0; s < SEC_TOP; s++) {
        if(!strcmp(name, section_names[s]))
          break;
      }
      if(s < SEC_TOP) {
        if(L->sec_seen[s]) {
          error_at(L, &kn->start_mark, name, "duplicate key (first at line "
                   "%zu)", L->sec_mark[s].line + 1);
          continue;
        }
        L->sec_seen[s] = 1;
        L->sec_mark[s] = kn->start_mark;
        if(vn->type == YAML_MAPPING_NODE)
          walk_section(L, doc, (enum section)s, vn);
        else if(!is_null(vn))
          error_at(L, &vn->start_mark, name, "expected a mapping of keys, "
                   "found %s", node_kind(vn));
        continue;
      }
    }
    idx = key_index(sec, name);
    nl = strlen(name);
    if(idx < 0 && nl > 5 && nl < sizeof(base) &&
       !strcmp(name + nl - 5, "_file")) {
      memcpy(base, name, nl - 5);
      base[nl - 5] = '\0';
      idx = key_index(sec, base);
      if(idx >= 0 && !(keys[idx].flags & KF_SECRET))
        idx = -1;
      file = 1;
    }
    if(idx < 0) {
      unknown_key(L, sec, name, &kn->start_mark);
      continue;
    }
    set_leaf(L, doc, idx, file, kn, vn);
  }
}

/* Reports a libyaml parser error. */
static void
syntax_error(struct loader *L, const yaml_parser_t *p)
{
  yaml_mark_t m = p->problem_mark;
  const char *problem = p->problem ? p->problem : "invalid YAML";

  if(p->error == YAML_MEMORY_ERROR) {
    L->nomem = 1;
    return;
  }
  if(p->error == YAML_READER_ERROR) {
    /* The reader reports a byte offset; turn it into line and column. */
    size_t off = p->problem_offset < L->len ? p->problem_offset : L->len;

    memset(&m, 0, sizeof(m));
    for(size_t i = 0; i < off; i++) {
      if(L->data[i] == '\n') {
        m.line++;
        m.column = 0;
      }
      else
        m.column++;
    }
  }
  if(p->context)
    error_at(L, &m, NULL, "YAML syntax error: %s %s (line %zu)", problem,
             p->context, p->context_mark.line + 1);
  else
    error_at(L, &m, NULL, "YAML syntax error: %s", problem);
}

/*
 * The first pass: syntax, one document, nesting depth. Returns 0 when the
 * document loader may run.
 */
static int
precheck(struct loader *L)
{
  yaml_parser_t p;
  yaml_event_t ev;
  int depth = 0, docs = 0, rc = 0, done = 0;

  if(!yaml_parser_initialize(&p)) {
    L->nomem = 1;
    return ERR_NOMEM;
  }
  yaml_parser_set_input_string(&p, L->data, L->len);
  while(!done) {
    if(!yaml_parser_parse(&p, &ev)) {
      syntax_error(L, &p);
      rc = ERR_PARSE;
      break;
    }
    switch(ev.type) {
    case YAML_STREAM_END_EVENT:
      done = 1;
      break;
    case YAML_DOCUMENT_START_EVENT:
      if(++docs > 1) {
        error_at(L, &ev.start_mark, NULL, "only one YAML document is "
                 "allowed");
        rc = ERR_PARSE;
        done = 1;
      }
      break;
    case YAML_SEQUENCE_START_EVENT:
    case YAML_MAPPING_START_EVENT:
      if(++depth > CONFIG_MAX_DEPTH) {
        error_at(L, &ev.start_mark, NULL, "nested more than %d levels deep",
                 CONFIG_MAX_DEPTH);
        rc = ERR_PARSE;
        done = 1;
      }
      break;
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT:
      depth--;
      break;
    default:
      break;
    }
    yaml_event_delete(&ev);
  }
  yaml_parser_delete(&p);
  return rc;
}

/* The second pass: load the document and walk it into L->c. */
static void
parse(struct loader *L)
{
  yaml_parser_t p;
  yaml_document_t doc;
  yaml_node_t *root;
  int have_doc = 0;

  if(precheck(L))
    return;
  if(!yaml_parser_initialize(&p)) {
    L->nomem = 1;
    return;
  }
  yaml_parser_set_input_string(&p, L->data, L->len);
  if(!yaml_parser_load(&p, &doc)) {
    syntax_error(L, &p);
    goto out;
  }
  have_doc = 1;
  root = yaml_document_get_root_node(&doc);
  if(!root || is_null(root))
    goto out;
  if(root->type != YAML_MAPPING_NODE) {
    error_at(L, &root->start_mark, NULL, "expected a mapping of sections "
             "(source:, destination:, ...) at the top level, found %s",
             node_kind(root));
    goto out;
  }
  walk_section(L, &doc, SEC_TOP, root);
out:
  if(have_doc) {
    /* Scalars may be secrets: zero them before libyaml frees them. */
    for(yaml_node_t *n = doc.nodes.start; n < doc.nodes.top; n++) {
      if(n->type == YAML_SCALAR_NODE)
        explicit_bzero(n->data.scalar.value, n->data.scalar.length);
    }
    yaml_document_delete(&doc);
  }
  yaml_parser_delete(&p);
}

/* ---- cross-key validation --------------------------------------------- */

static int
key_of(enum section sec, const char *name)
{
  int i = key_index(sec, name);

  /* Every name below is in the table; a typo here is a bug to catch. */
  if(i < 0)
    abort();
  return i;
}

static int
nonempty(const struct config *c, int idx)
{
  return **str_field(c, keys[idx].off) != '\0';
}

static int
is_loopback_url(const char *url)
{
  const char *h = strstr(url, "://");
  size_t n;

  if(!h)
    return 0;
  h += 3;
  n = strcspn(h, ":/");
  if(*h == '[')
    return !strncmp(h, "[::1]", 5);
  return (n == 9 && !strncmp(h, "localhost", 9)) || !strncmp(h, "127.", 4);
}

static void
validate(struct loader *L)
{
  struct config *c = L->c;
  int cs = key_of(SEC_SOURCE, "connection_string");
  int account = key_of(SEC_SOURCE, "account");
  int endpoint = key_of(SEC_SOURCE, "endpoint");
  int akey = key_of(SEC_SOURCE, "account_key");
  int sas = key_of(SEC_SOURCE, "sas_token");
  int has_key = nonempty(c, akey), has_sas = nonempty(c, sas);
  char why[160], bound[32];

  /* source */
  if(nonempty(c, cs)) {
    int others[] = { account, endpoint, akey, sas };

    for(size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++) {
      if(nonempty(c, others[i]))
        conflict(L, others[i], "not allowed together with "
                 "source.connection_string (which holds it)");
    }
  }
  else {
    if(!nonempty(c, account) && !nonempty(c, endpoint))
      missing(L, account, "required unless source.endpoint or "
              "source.connection_string is set");
    if(c->source.auth == CONFIG_AUTH_AUTO) {
      if(has_key && has_sas)
        conflict(L, sas, "cannot be used together with source.account_key; "
                 "set source.auth to say which one to use");
      else
        c->source.auth = has_key ? CONFIG_AUTH_SHARED_KEY :
                         has_sas ? CONFIG_AUTH_SAS : CONFIG_AUTH_ENTRA;
    }
    switch(c->source.auth) {
    case CONFIG_AUTH_SHARED_KEY:
      if(!has_key)
        missing(L, akey, "required when source.auth is shared_key (or "
                "source.account_key_file)");
      else if(!nonempty(c, account))
        missing(L, account, "required when source.auth is shared_key (the "
                "account name is part of the signature)");
      if(has_sas && has_key)
        conflict(L, sas, "not used when source.auth is shared_key");
      break;
    case CONFIG_AUTH_SAS:
      if(!has_sas)
        missing(L, sas, "required when source.auth is sas (or "
                "source.sas_token_file)");
      if(has_key && has_sas)
        conflict(L, akey, "not used when source.auth is sas");
      break;
    case CONFIG_AUTH_ENTRA:
      if(has_key)
        conflict(L, akey, "not used when source.auth is entra");
      if(has_sas)
        conflict(L, sas, "not used when source.auth is entra");
      break;
    case CONFIG_AUTH_AUTO:
      break;
    }
  }
  if(!*c->source.container)
    missing(L, key_of(SEC_SOURCE, "container"), "required");

  /* destination */
  if(c->destination.type == CONFIG_DEST_LOGS_INGESTION) {
    if(!*c->destination.endpoint)
      missing(L, key_of(SEC_DESTINATION, "endpoint"),
              "required when destination.type is logs_ingestion");
    if(!*c->destination.dcr_immutable_id)
      missing(L, key_of(SEC_DESTINATION, "dcr_immutable_id"),
              "required when destination.type is logs_ingestion");
  }
  else if(!*c->destination.path)
    missing(L, key_of(SEC_DESTINATION, "path"),
            "required when destination.type is file");
  if(c->destination.max_field_bytes > c->destination.max_request_bytes) {
    int mf = key_of(SEC_DESTINATION, "max_field_bytes");

    config_value_format_size(c->destination.max_request_bytes, bound,
                             sizeof(bound));
    snprintf(why, sizeof(why), "must not exceed destination."
             "max_request_bytes (%s)", bound);
    error_at(L, L->ks[mf].seen[0] ? &L->ks[mf].val_mark[0] : key_mark(L, mf),
             "destination.max_field_bytes", "%s", why);
  }

  /* credential */
  if(c->credential.method == CONFIG_CRED_CLIENT_SECRET ||
     c->credential.method == CONFIG_CRED_CLIENT_CERTIFICATE) {
    int secret = c->credential.method == CONFIG_CRED_CLIENT_SECRET;
    const char *m = secret ? "client_secret" : "client_certificate";

    snprintf(why, sizeof(why), "required when credential.method is %s", m);
    if(!*c->credential.tenant_id)
      missing(L, key_of(SEC_CREDENTIAL, "tenant_id"), why);
    if(!*c->credential.client_id)
      missing(L, key_of(SEC_CREDENTIAL, "client_id"), why);
    if(secret && !*c->credential.client_secret)
      missing(L, key_of(SEC_CREDENTIAL, "client_secret"), "required when "
              "credential.method is client_secret (or "
              "credential.client_secret_file)");
    if(!secret && !*c->credential.certificate_file)
      missing(L, key_of(SEC_CREDENTIAL, "certificate_file"), why);
  }
  if(c->credential.method == CONFIG_CRED_MANAGED_IDENTITY) {
    int ids[] = { key_of(SEC_CREDENTIAL, "client_id"),
                  key_of(SEC_CREDENTIAL, "object_id"),
                  key_of(SEC_CREDENTIAL, "resource_id") };
    int n = 0;

    for(size_t i = 0; i < 3; i++) {
      if(nonempty(c, ids[i]) && n++)
        conflict(L, ids[i], "set only one of credential.client_id, "
                 "credential.object_id and credential.resource_id");
    }
  }
}

/* Fills derived values of a valid config and logs warnings. */
static int
finish(struct loader *L, int mode)
{
  struct config *c = L->c;
  const char *urls[] = { "source.endpoint", "destination.endpoint",
                         "credential.authority_host" };
  const char *vals[3];
  int rc;

  if(!*c->source.endpoint && *c->source.account) {
    struct buf b;

    buf_init(&b, 256);
    if(buf_printf(&b, "https://%s.blob.core.windows.net", c->source.account))
      return ERR_NOMEM;
    replace_str(&c->source.endpoint, buf_detach(&b, NULL), 0);
  }
  rc = derive_listen(c);
  if(rc)
    return rc;
  vals[0] = c->source.endpoint;
  vals[1] = c->destination.endpoint;
  vals[2] = c->credential.authority_host;
  for(int i = 0; i < 3; i++) {
    if(!strncasecmp(vals[i], "http://", 7) && !is_loopback_url(vals[i]))
      log_warn("config", "%s: %s uses plain http to a host that is not "
               "loopback; credentials and data would cross the network "
               "unencrypted", L->name, urls[i]);
  }
  if(mode >= 0 && L->inline_secret[0] && (mode & 077))
    log_warn("config", "%s holds a secret (%s) and is readable by group or "
             "others (mode %04o); chmod 600 it, or move the secret to %s_file "
             "or the environment", L->name, L->inline_secret,
             (unsigned)(mode & 07777), L->inline_secret);
  return 0;
}

/* Copies the collected messages to *errors (when wanted) and frees them. */
static void
hand_errors(struct buf *errs, char **errors)
{
  if(errors && errs->len) {
    *errors = buf_detach(errs, NULL);
    return;
  }
  buf_free(errs);
}

/*
 * Loads len bytes at data, named name in messages; mode is the file's
 * st_mode, or -1 when there is no file.
 */
static int
load(const unsigned char *data, size_t len, const char *name, int mode,
     struct config **out, char **errors)
{
  struct loader *L = calloc(1, sizeof(*L));
  int rc;

  if(!L)
    return ERR_NOMEM;
  L->name = name;
  L->data = data;
  L->len = len;
  buf_init(&L->errs, CONFIG_MAX_ERROR_BYTES);
  buf_init(&L->val, CONFIG_MAX_VALUE_BYTES);
  buf_init(&L->file, CONFIG_MAX_SECRET_FILE_BYTES);
  rc = config_defaults(&L->c);
  if(rc)
    goto out;
  parse(L);
  if(!L->nerrs && !L->nomem)
    validate(L);
  if(L->nomem)
    rc = ERR_NOMEM;
  else if(L->nerrs)
    rc = ERR_CONFIG;
  else
    rc = finish(L, mode);
  if(!rc) {
    *out = L->c;
    L->c = NULL;
  }
out:
  if(rc == ERR_NOMEM)
    buf_free(&L->errs);
  hand_errors(&L->errs, errors);
  buf_wipe(&L->val);
  buf_wipe(&L->file);
  config_destroy(L->c);
  explicit_bzero(L, sizeof(*L));
  free(L);
  return rc;
}

int
config_load_string(const char *yaml, size_t len, const char *name,
                   struct config **out, char **errors)
{
  *out = NULL;
  if(errors)
    *errors = NULL;
  if(!yaml)
    return ERR_INVAL;
  return load((const unsigned char *)yaml, len, name ? name : "<string>", -1,
              out, errors);
}

/* Sets *errors to one formatted message (when wanted). */
static void
one_error(char **errors, const char *fmt, ...)
  __attribute__((format(printf, 2, 3)));

static void
one_error(char **errors, const char *fmt, ...)
{
  struct buf b;
  va_list ap;

  if(!errors)
    return;
  buf_init(&b, CONFIG_MAX_ERROR_BYTES);
  va_start(ap, fmt);
  if(!buf_vprintf(&b, fmt, ap))
    (void)buf_putc(&b, '\n');
  va_end(ap);
  *errors = buf_detach(&b, NULL);
}

int
config_load(const char *path, struct config **out, char **errors)
{
  struct buf data;
  struct stat st;
  int fd = -1, rc;

  *out = NULL;
  if(errors)
    *errors = NULL;
  if(!path)
    return ERR_INVAL;
  buf_init(&data, CONFIG_MAX_FILE_BYTES);
  fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if(fd < 0) {
    rc = errno == ENOENT ? ERR_NOTFOUND : ERR_IO;
    one_error(errors, "%s: cannot open: %s", path, strerror(errno));
    goto out;
  }
  if(fstat(fd, &st)) {
    rc = ERR_IO;
    one_error(errors, "%s: cannot stat: %s", path, strerror(errno));
    goto out;
  }
  for(;;) {
    char chunk[8192];
    ssize_t r = read(fd, chunk, sizeof(chunk));

    if(r < 0 && errno == EINTR)
      continue;
    if(r < 0) {
      rc = ERR_IO;
      one_error(errors, "%s: cannot read: %s", path, strerror(errno));
      goto out;
    }
    if(r == 0)
      break;
    rc = buf_append(&data, chunk, (size_t)r);
    explicit_bzero(chunk, sizeof(chunk));
    if(rc == ERR_TOOBIG) {
      rc = ERR_CONFIG;
      one_error(errors, "%s: larger than %d bytes; this is not a "
                "configuration file", path, CONFIG_MAX_FILE_BYTES);
      goto out;
    }
    if(rc)
      goto out;
  }
  rc = load((const unsigned char *)(data.data ? data.data : ""), data.len,
            path, (int)st.st_mode, out, errors);
out:
  if(fd >= 0)
    close(fd);
  buf_wipe(&data);
  return rc;
}

/* ---- printing --------------------------------------------------------- */

/* Writes s as a YAML double-quoted scalar that config_load reads back. */
static void
print_quoted(FILE *f, const char *s)
{
  fputc('"', f);
  for(; *s; s++) {
    unsigned char ch = (unsigned char)*s;

    if(ch == '"' || ch == '\\')
      fprintf(f, "\\%c", ch);
    else if(ch < 0x20 || ch == 0x7f)
      fprintf(f, "\\x%02x", ch);
    else if(ch == '$' && s[1] == '{')
      fputs("$$", f);   /* so that ${ is not expanded on reload */
    else
      fputc(ch, f);
  }
  fputc('"', f);
}

static void
print_key(FILE *f, const struct config *c, const struct key *k)
{
  const char *indent = k->section == SEC_TOP ? "" : "  ";
  char text[64];

  fprintf(f, "%s# %s\n", indent, k->help);
  switch(k->type) {
  case KT_STRING: {
    const char *v = *str_field(c, k->off);

    if(k->flags & KF_SECRET) {
      const char *file = *str_field(c, k->off2);

      if(*file) {
        fprintf(f, "%s%s_file: ", indent, k->name);
        print_quoted(f, file);
        fputc('\n', f);
      }
      else if(*v)
        fprintf(f, "%s%s: \"%s\"  # set; the value is not shown\n", indent,
                k->name, CONFIG_REDACTED);
      else
        fprintf(f, "%s%s: \"\"\n", indent, k->name);
      return;
    }
    fprintf(f, "%s%s: ", indent, k->name);
    print_quoted(f, v);
    fputc('\n', f);
    return;
  }
  case KT_UINT:
    snprintf(text, sizeof(text), "%u",
             *(const unsigned *)((const char *)c + k->off));
    break;
  case KT_DURATION:
    config_value_format_duration(
      *(const uint64_t *)((const char *)c + k->off), text, sizeof(text));
    break;
  case KT_SIZE:
    config_value_format_size(*(const uint64_t *)((const char *)c + k->off),
                             text, sizeof(text));
    break;
  case KT_ENUM: {
    int v = *(const int *)((const char *)c + k->off);

    snprintf(text, sizeof(text), "?");
    for(const struct enum_name *e = k->names; e->name; e++) {
      if(e->value == v)
        snprintf(text, sizeof(text), "%s", e->name);
    }
    break;
  }
  case KT_START: {
    int v = *(const int *)((const char *)c + k->off);

    if(v == CONFIG_START_TIME)
      config_value_format_time(
        *(const int64_t *)((const char *)c + k->off2), text, sizeof(text));
    else
      snprintf(text, sizeof(text), "%s",
               v == CONFIG_START_NOW ? "now" : "beginning");
    break;
  }
  case KT_LIST: {
    const struct config_strlist *l =
      (const struct config_strlist *)((const char *)c + k->off);

    fprintf(f, "%s%s: [", indent, k->name);
    for(size_t i = 0; i < l->n; i++) {
      if(i)
        fputs(", ", f);
      print_quoted(f, l->v[i]);
    }
    fputs("]\n", f);
    return;
  }
  }
  fprintf(f, "%s%s: %s\n", indent, k->name, text);
}

int
config_print(const struct config *c, FILE *f)
{
  fputs("# spectra-sentinel configuration (effective values; secrets are "
        "not shown)\n", f);
  for(int s = 0; s <= SEC_TOP; s++) {
    if(s < SEC_TOP)
      fprintf(f, "%s:\n", section_names[s]);
    for(size_t i = 0; i < NKEYS; i++) {
      if((int)keys[i].section == s)
        print_key(f, c, &keys[i]);
    }
  }
  if(fflush(f) || ferror(f))
    return ERR_IO;
  return 0;
}

/* ---- secrets ---------------------------------------------------------- */

/*
 * Registers the value of every "name=value" part of s (parts separated by
 * sep, name compared without case).
 */
static int
register_parts(const char *s, char sep, const char *name)
{
  size_t nl = strlen(name);
  int rc = 0;

  while(*s && !rc) {
    size_t partlen = strcspn(s, (char[]){ sep, '\0' });

    if(partlen > nl && !strncasecmp(s, name, nl) && s[nl] == '=') {
      char *v = strndup(s + nl + 1, partlen - nl - 1);

      if(!v)
        return ERR_NOMEM;
      rc = log_secret_add(v);
      if(!rc && sep == ';' && !strcasecmp(name, "SharedAccessSignature"))
        rc = register_parts(v, '&', "sig");
      free_secret(v);
    }
    s += partlen;
    if(*s)
      s++;
  }
  return rc;
}

int
config_register_secrets(const struct config *c)
{
  int rc;

  for(size_t i = 0; i < NKEYS; i++) {
    if(keys[i].flags & KF_SECRET) {
      rc = log_secret_add(*str_field(c, keys[i].off));
      if(rc)
        return rc;
    }
  }
  rc = register_parts(c->source.connection_string, ';', "AccountKey");
  if(!rc)
    rc = register_parts(c->source.connection_string, ';',
                        "SharedAccessSignature");
  if(!rc)
    rc = register_parts(c->source.sas_token, '&', "sig");
  return rc;
}
