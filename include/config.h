/*
 * config.h: the daemon's configuration (SPEC section 7).
 *
 * A YAML file is parsed with libyaml into a public struct config whose
 * fields callers read directly. Every key, its type, default, bounds and
 * help text live in one table in config.c, so parsing, validation, printing
 * and the defaults are uniform; docs/configuration.md is the reference for
 * operators and conf/spectra-sentinel.yaml the commented example.
 *
 * Value rules, in short (docs/configuration.md has the details):
 * - "${VAR}" in a scalar expands from the environment; "$${" is a literal
 *   "${". An unset VAR is an error, except when the whole scalar is "${VAR}":
 *   then the key counts as not set and its default applies.
 * - Every secret key X also accepts X_file, a file holding the value
 *   (at most CONFIG_MAX_SECRET_FILE_BYTES, trailing newlines trimmed); a
 *   relative path is resolved against $CREDENTIALS_DIRECTORY when that is
 *   set (systemd LoadCredential=). Setting both X and X_file is an error.
 * - Durations need a unit: 500ms, 30s, 5m, 1h, 1d, or a sum such as 1h30m.
 *   Sizes are bytes, optionally with a unit: 64KiB, 512MiB, 1MB, 1GiB.
 * - Every error names the file, line, column and key, e.g.
 *   "f.yaml:3:18: source.poll_interval: invalid duration "5 parsecs"
 *   (expected e.g. 500ms, 30s, 5m, 1h)", and all errors are collected.
 *
 * A loaded config is immutable and may be read from any thread. Every string
 * field is non-NULL (empty when not set). Secrets are zeroed when the config
 * is destroyed; they never appear in errors or in config_print output.
 */
#ifndef SS_CONFIG_H
#define SS_CONFIG_H

#include <stdint.h>
#include <stdio.h>

#include "log.h"

#define CONFIG_DEFAULT_PATH "/etc/spectra-sentinel/spectra-sentinel.yaml"

/* The largest configuration file accepted. */
#define CONFIG_MAX_FILE_BYTES (1024 * 1024)

/* The largest X_file secret file accepted. */
#define CONFIG_MAX_SECRET_FILE_BYTES (64 * 1024)

/* What config_print writes for a secret that is set; refused on load. */
#define CONFIG_REDACTED "<redacted>"

/* The Logs Ingestion API's request size limit (413 above it). */
#define CONFIG_API_MAX_REQUEST_BYTES 1048576

/*
 * source.auth. CONFIG_AUTH_AUTO (the default) is resolved while loading:
 * shared_key when source.account_key is set, sas when source.sas_token is
 * set, entra otherwise. It stays AUTO only with source.connection_string,
 * whose own AccountKey or SharedAccessSignature then decides.
 */
enum config_auth {
  CONFIG_AUTH_AUTO = 0,
  CONFIG_AUTH_SHARED_KEY,
  CONFIG_AUTH_SAS,
  CONFIG_AUTH_ENTRA
};

enum config_after_ingest {
  CONFIG_AFTER_INGEST_KEEP = 0,
  CONFIG_AFTER_INGEST_DELETE
};

/* source.start_from: with CONFIG_START_TIME, source.start_time holds it. */
enum config_start_from {
  CONFIG_START_BEGINNING = 0,
  CONFIG_START_NOW,
  CONFIG_START_TIME
};

enum config_dest_type {
  CONFIG_DEST_LOGS_INGESTION = 0,
  CONFIG_DEST_FILE
};

enum config_compression {
  CONFIG_COMPRESSION_GZIP = 0,
  CONFIG_COMPRESSION_NONE
};

enum config_cred_method {
  CONFIG_CRED_DEFAULT = 0,
  CONFIG_CRED_CLIENT_SECRET,
  CONFIG_CRED_CLIENT_CERTIFICATE,
  CONFIG_CRED_WORKLOAD_IDENTITY,
  CONFIG_CRED_MANAGED_IDENTITY
};

/* A list of strings; v[i] non-NULL for i < n, v NULL when n is 0. */
struct config_strlist {
  char **v;
  size_t n;
};

/*
 * Where secret X came from: X_file holds the path given for X_file, or ""
 * when the value was written inline (or came from ${VAR}).
 */
struct config_source {
  char *connection_string;       /* secret; "" unless set */
  char *connection_string_file;
  char *account;                 /* storage account name */
  char *endpoint;                /* blob endpoint, no trailing '/'; defaults
                                    to https://ACCOUNT.blob.core.windows.net */
  enum config_auth auth;
  char *account_key;             /* secret */
  char *account_key_file;
  char *sas_token;               /* secret, without a leading '?' */
  char *sas_token_file;
  char *container;
  char *prefix;
  struct config_strlist suffixes;   /* empty: every blob */
  uint64_t poll_interval_ms;
  unsigned download_concurrency;
  uint64_t max_blob_bytes;
  enum config_after_ingest after_ingest;
  enum config_start_from start_from;
  int64_t start_time;            /* Unix seconds, for CONFIG_START_TIME */
};

struct config_destination {
  enum config_dest_type type;
  char *endpoint;                /* DCE or DCR ingestion endpoint, no '/' */
  char *dcr_immutable_id;
  char *stream;
  char *path;                    /* NDJSON output, for CONFIG_DEST_FILE */
  enum config_compression compression;
  uint64_t max_request_bytes;
  uint64_t max_field_bytes;
  unsigned concurrency;
  uint64_t timeout_ms;
};

struct config_credential {
  enum config_cred_method method;
  char *tenant_id;
  char *client_id;               /* app id, or user-assigned identity */
  char *object_id;               /* user-assigned identity (IMDS object_id) */
  char *resource_id;             /* user-assigned identity (msi_res_id) */
  char *client_secret;           /* secret */
  char *client_secret_file;
  char *certificate_file;        /* PEM with certificate and private key */
  char *authority_host;          /* no trailing '/' */
  char *scope;                   /* Logs Ingestion token scope */
  char *storage_scope;           /* storage token scope (auth: entra) */
  char *imds_endpoint;           /* no trailing '/' */
};

struct config_state {
  char *directory;
  uint64_t grace_ms;
};

struct config_tls {
  char *ca_file;                 /* extra CA bundle; "" for none */
};

/*
 * metrics.listen as written ("" disables the listener) and split into its
 * host (without IPv6 brackets) and port; port 0 asks for any free port.
 */
struct config_metrics {
  char *listen;
  char listen_host[256];
  unsigned listen_port;
};

struct config_log {
  enum log_level level;
  enum log_format format;
};

struct config {
  struct config_source source;
  struct config_destination destination;
  struct config_credential credential;
  struct config_state state;
  struct config_tls tls;
  struct config_metrics metrics;
  struct config_log log;
  uint64_t shutdown_timeout_ms;
};

/*
 * Loads and validates the file at path. Returns 0 and *out (owned by the
 * caller, freed with config_destroy) with *errors set to NULL; or
 * ERR_NOTFOUND (no such file), ERR_IO (unreadable), ERR_CONFIG (invalid)
 * or ERR_NOMEM, with *out NULL and *errors a malloc'ed, newline-separated
 * list of messages that the caller frees (NULL only on ERR_NOMEM). errors
 * may be NULL when the messages are not wanted. Logs a warning (log_warn)
 * when a file holding a secret is readable by group or others.
 */
int config_load(const char *path, struct config **out, char **errors);

/*
 * The same from len bytes at yaml (borrowed; need not be NUL-terminated).
 * name (borrowed; NULL means "<string>") stands for the file in messages.
 * No permission check is made, since there is no file.
 */
int config_load_string(const char *yaml, size_t len, const char *name,
                       struct config **out, char **errors);

/*
 * Creates a config holding every default and nothing else (it does not
 * pass validation: required keys are empty). Returns 0 and *out (owned by
 * the caller, freed with config_destroy), or ERR_NOMEM.
 */
int config_defaults(struct config **out);

/*
 * Writes the configuration c (borrowed) to f (borrowed) as commented YAML
 * that config_load accepts again. A secret read from a file is printed as
 * its X_file path; an inline secret that is set is printed as
 * CONFIG_REDACTED (refused on load, so it must be supplied again) and one
 * that is not set as "". Returns 0, or ERR_IO when writing fails.
 */
int config_print(const struct config *c, FILE *f);

/*
 * Registers every secret of c (borrowed) with log_secret_add(), including
 * the AccountKey, SharedAccessSignature and sig= parts of the connection
 * string and the SAS token, so that no log line can show them. Returns 0 or
 * ERR_NOMEM.
 */
int config_register_secrets(const struct config *c);

/* Zeroes the secrets of c and frees it. NULL is a no-op. */
void config_destroy(struct config *c);

/*
 * Value parsers, exposed for the command line and for tests. Each parses
 * the whole NUL-terminated string s (borrowed) and returns 0 and the value,
 * or ERR_PARSE (also on overflow).
 *
 * config_parse_duration: one or more NUMBER UNIT pairs with units ms, s, m,
 * h, d ("500ms", "30s", "1h30m"); a bare number is refused because its unit
 * would be a guess. Result in milliseconds.
 *
 * config_parse_size: NUMBER [UNIT] with unit B, kB/KB, MB, GB, TB (powers of
 * 1000) or KiB, MiB, GiB, TiB (powers of 1024), case-insensitive. Bytes.
 *
 * config_parse_time: an RFC 3339 date-time ("2026-11-30T00:07:03Z",
 * "2026-11-30T01:07:03.5+01:00"); fractions are truncated. Unix seconds.
 */
int config_parse_duration(const char *s, uint64_t *ms);
int config_parse_size(const char *s, uint64_t *bytes);
int config_parse_time(const char *s, int64_t *unix_seconds);

#endif
