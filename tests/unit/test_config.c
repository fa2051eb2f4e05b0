/*
 * test_config.c: the configuration module (config.c, config_value.c).
 *
 * Invalid configurations assert the exact message list, location and key
 * included. Valid ones check the typed values, the defaults, ${VAR}
 * expansion, X_file secrets with $CREDENTIALS_DIRECTORY, the print/load
 * round trip, and that no secret reaches printed output, an error message
 * or (once registered) a log line. Fixtures live in tests/data/config/.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "config_value.h"
#include "err.h"
#include "log.h"

#define SECRETS_DIR "tests/data/config/secrets"
#define ACCOUNT_KEY "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsu" \
                    "Fq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
#define CLIENT_SECRET "test~client~secret~Q8x7Z"

/* A valid source and destination, three lines each, for the cases below. */
#define SRC "source:\n  account: acct1\n  container: reports\n"
#define DST "destination:\n  endpoint: https://dce.example.com\n" \
            "  dcr_immutable_id: dcr-0123\n"

/* Loads yaml as "t.yaml" and asserts success; returns the config. */
static struct config *
load_ok(const char *yaml)
{
  struct config *c = NULL;
  char *errs = NULL;
  int rc = config_load_string(yaml, strlen(yaml), "t.yaml", &c, &errs);

  if(rc) {
    print_message("unexpected failure %d; errors:\n%s", rc,
                  errs ? errs : "(none)");
    print_message("for:\n%.900s\n", yaml);
  }
  assert_int_equal(rc, 0);
  assert_non_null(c);
  assert_null(errs);
  return c;
}

/* Loads yaml as "t.yaml" and asserts it fails with exactly expected. */
static void
expect_errors(const char *yaml, const char *expected)
{
  struct config *c = NULL;
  char *errs = NULL;
  int rc = config_load_string(yaml, strlen(yaml), "t.yaml", &c, &errs);

  if(rc != ERR_CONFIG || !errs || strcmp(errs, expected))
    print_message("for:\n%s\nexpected:\n%sgot (%d):\n%s", yaml, expected,
                  rc, errs ? errs : "(none)\n");
  assert_int_equal(rc, ERR_CONFIG);
  assert_null(c);
  assert_non_null(errs);
  assert_string_equal(errs, expected);
  free(errs);
}

/* config_print into a malloc'ed string. */
static char *
print_to_string(const struct config *c)
{
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);

  assert_non_null(f);
  assert_int_equal(config_print(c, f), 0);
  fclose(f);
  return text;
}

/* Reads a whole (small) file into a malloc'ed string. */
static char *
slurp(const char *path)
{
  FILE *f = fopen(path, "rb");
  char *p;
  long n;

  assert_non_null(f);
  fseek(f, 0, SEEK_END);
  n = ftell(f);
  fseek(f, 0, SEEK_SET);
  p = malloc((size_t)n + 1);
  assert_non_null(p);
  assert_int_equal(fread(p, 1, (size_t)n, f), (size_t)n);
  p[n] = '\0';
  fclose(f);
  return p;
}

/* Writes text to a new temporary file with mode; returns its path. */
static char *
temp_file(const char *text, size_t len, mode_t mode)
{
  char *path = strdup("/tmp/test_config_XXXXXX");
  int fd;

  assert_non_null(path);
  fd = mkstemp(path);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, text, len), (ssize_t)len);
  assert_int_equal(fchmod(fd, mode), 0);
  close(fd);
  return path;
}

/* Log capture through a temporary file. */
static int capture_fd = -1;

static void
capture_start(void)
{
  char path[] = "/tmp/test_config_log_XXXXXX";

  capture_fd = mkstemp(path);
  assert_true(capture_fd >= 0);
  unlink(path);
  log_set_fd(capture_fd);
  log_set_level(LOG_INFO);
}

static char *
capture_end(void)
{
  off_t n = lseek(capture_fd, 0, SEEK_END);
  char *p = malloc((size_t)n + 1);

  assert_non_null(p);
  assert_int_equal(pread(capture_fd, p, (size_t)n, 0), (ssize_t)n);
  p[n] = '\0';
  log_set_fd(2);
  log_set_level(LOG_ERROR);
  close(capture_fd);
  capture_fd = -1;
  return p;
}

/* ---- value parsers ---------------------------------------------------- */

static void
test_durations(void **state)
{
  static const struct {
    const char *s;
    uint64_t ms;
  } good[] = {
    { "500ms", 500 }, { "30s", 30000 }, { "5m", 300000 },
    { "1h", 3600000 }, { "1d", 86400000 }, { "1h30m", 5400000 },
    { "0s", 0 }, { "1m30s500ms", 90500 }, { "007s", 7000 },
    { "213503982334d", 18446744073657600000ULL },
  };
  static const char *const bad[] = {
    "", "30", "5 parsecs", "1.5s", "-1s", "+1s", "1H", "s", "30s5m",
    "5m5m", " 30s", "30s ", "1hour", "10 s", "18446744073709551616ms",
    "213503982335d", "18446744073709551615s", "1h30", "ms",
  };
  char text[64];
  uint64_t v;

  (void)state;
  for(size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
    v = 12345;
    if(config_parse_duration(good[i].s, &v))
      fail_msg("duration %s refused", good[i].s);
    assert_int_equal(v, good[i].ms);
    /* The canonical text parses back to the same value. */
    config_value_format_duration(v, text, sizeof(text));
    assert_int_equal(config_parse_duration(text, &v), 0);
    assert_int_equal(v, good[i].ms);
  }
  for(size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    if(config_parse_duration(bad[i], &v) != ERR_PARSE)
      fail_msg("duration \"%s\" accepted", bad[i]);
  }
  config_value_format_duration(30000, text, sizeof(text));
  assert_string_equal(text, "30s");
  config_value_format_duration(90500, text, sizeof(text));
  assert_string_equal(text, "90500ms");
  config_value_format_duration(5400000, text, sizeof(text));
  assert_string_equal(text, "90m");
  config_value_format_duration(0, text, sizeof(text));
  assert_string_equal(text, "0s");
}

static void
test_sizes(void **state)
{
  static const struct {
    const char *s;
    uint64_t n;
  } good[] = {
    { "0", 0 }, { "1000000", 1000000 }, { "1B", 1 }, { "64KiB", 65536 },
    { "512MiB", 536870912ULL }, { "1MB", 1000000 }, { "1GiB", 1073741824ULL },
    { "1gib", 1073741824ULL }, { "2TB", 2000000000000ULL }, { "1kB", 1000 },
    { "1KB", 1000 }, { "3TiB", 3298534883328ULL },
    { "18446744073709551615", UINT64_MAX },
  };
  static const char *const bad[] = {
    "", "1.5MiB", "-1", "12XB", "1 MiB", "KiB", "0x10", "1MiBs",
    "18446744073709551616", "17179869184GiB", "1 ", "1e6",
  };
  char text[64];
  uint64_t v;

  (void)state;
  for(size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
    if(config_parse_size(good[i].s, &v))
      fail_msg("size %s refused", good[i].s);
    assert_int_equal(v, good[i].n);
    config_value_format_size(v, text, sizeof(text));
    assert_int_equal(config_parse_size(text, &v), 0);
    assert_int_equal(v, good[i].n);
  }
  for(size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    if(config_parse_size(bad[i], &v) != ERR_PARSE)
      fail_msg("size \"%s\" accepted", bad[i]);
  }
  config_value_format_size(1000000, text, sizeof(text));
  assert_string_equal(text, "1000000");
  config_value_format_size(536870912ULL, text, sizeof(text));
  assert_string_equal(text, "512MiB");
  config_value_format_size(1048576, text, sizeof(text));
  assert_string_equal(text, "1MiB");
}

static void
test_times(void **state)
{
  static const struct {
    const char *s;
    int64_t t;
  } good[] = {
    { "2026-11-30T00:07:03Z", 1795997223 },
    { "2026-11-30T01:07:03+01:00", 1795997223 },
    { "2026-11-29T19:37:03-04:30", 1795997223 },
    { "2026-11-30t00:07:03.999z", 1795997223 },
    { "2026-11-30 00:07:03Z", 1795997223 },
    { "2024-02-29T12:00:00-05:30", 1709227800 },
    { "2000-03-01T00:00:00Z", 951868800 },
    { "1970-01-01T00:00:00Z", 0 },
    { "9999-12-31T23:59:59Z", 253402300799LL },
  };
  static const char *const bad[] = {
    "2026-02-29T00:00:00Z", "2026-13-01T00:00:00Z", "2026-11-30",
    "2026-11-30T24:00:00Z", "2026-11-30T00:07:03", "1969-12-31T23:59:59Z",
    "2026-11-30T00:07:03+0100", "2026-11-30T00:07:03.Z",
    "2026-11-31T00:00:00Z",
    "26-11-30T00:07:03Z", "2026-11-30T00:07:03Zjunk", "now", "",
    "1970-01-01T00:00:00+00:01",
  };
  char text[64];
  int64_t v;

  (void)state;
  for(size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
    if(config_parse_time(good[i].s, &v))
      fail_msg("time %s refused", good[i].s);
    assert_int_equal(v, good[i].t);
    config_value_format_time(v, text, sizeof(text));
    assert_int_equal(config_parse_time(text, &v), 0);
    assert_int_equal(v, good[i].t);
  }
  for(size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    if(config_parse_time(bad[i], &v) != ERR_PARSE)
      fail_msg("time \"%s\" accepted", bad[i]);
  }
  config_value_format_time(1795997223, text, sizeof(text));
  assert_string_equal(text, "2026-11-30T00:07:03Z");
}

/* ---- defaults and valid files ------------------------------------------ */

static void
test_defaults(void **state)
{
  struct config *c = NULL;

  (void)state;
  assert_int_equal(config_defaults(&c), 0);
  assert_string_equal(c->source.connection_string, "");
  assert_string_equal(c->source.account, "");
  assert_string_equal(c->source.endpoint, "");
  assert_int_equal(c->source.auth, CONFIG_AUTH_AUTO);
  assert_string_equal(c->source.account_key, "");
  assert_string_equal(c->source.account_key_file, "");
  assert_string_equal(c->source.container, "");
  assert_string_equal(c->source.prefix, "");
  assert_int_equal(c->source.suffixes.n, 0);
  assert_int_equal(c->source.poll_interval_ms, 30000);
  assert_int_equal(c->source.download_concurrency, 8);
  assert_int_equal(c->source.max_blob_bytes, 512ULL << 20);
  assert_int_equal(c->source.after_ingest, CONFIG_AFTER_INGEST_KEEP);
  assert_int_equal(c->source.start_from, CONFIG_START_BEGINNING);
  assert_int_equal(c->destination.type, CONFIG_DEST_LOGS_INGESTION);
  assert_string_equal(c->destination.stream, "Custom-SpectraDetectLogs_CL");
  assert_string_equal(c->destination.path, "");
  assert_int_equal(c->destination.compression, CONFIG_COMPRESSION_GZIP);
  assert_int_equal(c->destination.max_request_bytes, 1000000);
  assert_int_equal(c->destination.max_field_bytes, 65536);
  assert_int_equal(c->destination.concurrency, 4);
  assert_int_equal(c->destination.timeout_ms, 60000);
  assert_int_equal(c->credential.method, CONFIG_CRED_DEFAULT);
  assert_string_equal(c->credential.authority_host,
                      "https://login.microsoftonline.com");
  assert_string_equal(c->credential.scope,
                      "https://monitor.azure.com//.default");
  assert_string_equal(c->credential.storage_scope,
                      "https://storage.azure.com/.default");
  assert_string_equal(c->credential.imds_endpoint, "http://169.254.169.254");
  assert_string_equal(c->state.directory, "/var/lib/spectra-sentinel");
  assert_int_equal(c->state.grace_ms, 3600000);
  assert_string_equal(c->tls.ca_file, "");
  assert_string_equal(c->metrics.listen, "127.0.0.1:9464");
  assert_string_equal(c->metrics.listen_host, "127.0.0.1");
  assert_int_equal(c->metrics.listen_port, 9464);
  assert_int_equal(c->log.level, LOG_INFO);
  assert_int_equal(c->log.format, LOG_FORMAT_TEXT);
  assert_int_equal(c->shutdown_timeout_ms, 30000);
  config_destroy(c);
  config_destroy(NULL);
}

static void
test_minimal_file(void **state)
{
  struct config *c = NULL;
  char *errs = NULL;

  (void)state;
  assert_int_equal(config_load("tests/data/config/minimal.yaml", &c, &errs),
                   0);
  assert_null(errs);
  /* The endpoint follows from the account; with no secret, Entra ID. */
  assert_string_equal(c->source.endpoint,
                      "https://stspectradetectlogs.blob.core.windows.net");
  assert_int_equal(c->source.auth, CONFIG_AUTH_ENTRA);
  assert_string_equal(c->source.container, "reports");
  assert_string_equal(c->destination.dcr_immutable_id,
                      "dcr-00000000000000000000000000000000");
  assert_int_equal(c->source.poll_interval_ms, 30000);
  config_destroy(c);
}

static void
test_full_file(void **state)
{
  struct config *c = NULL;
  char *errs = NULL;

  (void)state;
  setenv("CREDENTIALS_DIRECTORY", SECRETS_DIR, 1);
  assert_int_equal(config_load("tests/data/config/full.yaml", &c, &errs), 0);
  unsetenv("CREDENTIALS_DIRECTORY");
  assert_null(errs);
  assert_string_equal(c->source.account, "stspectratest");
  /* Trailing slashes go, so that callers can append "/path". */
  assert_string_equal(c->source.endpoint,
                      "http://127.0.0.1:10000/stspectratest");
  assert_int_equal(c->source.auth, CONFIG_AUTH_SHARED_KEY);
  assert_string_equal(c->source.account_key, ACCOUNT_KEY);
  assert_string_equal(c->source.account_key_file, "account-key");
  assert_string_equal(c->source.container, "spectra-reports");
  assert_string_equal(c->source.prefix, "in/2026/");
  assert_int_equal(c->source.suffixes.n, 2);
  assert_string_equal(c->source.suffixes.v[0], ".json");
  assert_string_equal(c->source.suffixes.v[1], ".json.gz");
  assert_int_equal(c->source.poll_interval_ms, 90000);
  assert_int_equal(c->source.download_concurrency, 3);
  assert_int_equal(c->source.max_blob_bytes, 64ULL << 20);
  assert_int_equal(c->source.after_ingest, CONFIG_AFTER_INGEST_DELETE);
  assert_int_equal(c->source.start_from, CONFIG_START_TIME);
  assert_int_equal(c->source.start_time, 1795997223);
  assert_string_equal(c->destination.endpoint,
                      "https://dce-test.eastus-1.ingest.monitor.azure.com");
  assert_string_equal(c->destination.stream, "Custom-Test_CL");
  assert_string_equal(c->destination.path, "/tmp/spectra-out.ndjson");
  assert_int_equal(c->destination.compression, CONFIG_COMPRESSION_NONE);
  assert_int_equal(c->destination.max_request_bytes, 512 * 1024);
  assert_int_equal(c->destination.max_field_bytes, 32 * 1024);
  assert_int_equal(c->destination.concurrency, 2);
  assert_int_equal(c->destination.timeout_ms, 90000);
  assert_int_equal(c->credential.method, CONFIG_CRED_CLIENT_SECRET);
  assert_string_equal(c->credential.tenant_id, "contoso.onmicrosoft.com");
  assert_string_equal(c->credential.client_secret, CLIENT_SECRET);
  assert_string_equal(c->credential.client_secret_file, "client-secret");
  assert_string_equal(c->credential.authority_host,
                      "https://login.microsoftonline.us");
  assert_string_equal(c->credential.imds_endpoint, "http://127.0.0.1:40342");
  assert_string_equal(c->state.directory, "/tmp/spectra-state");
  assert_int_equal(c->state.grace_ms, 7200000);
  assert_string_equal(c->tls.ca_file, "/etc/ssl/certs/extra.pem");
  assert_string_equal(c->metrics.listen, "[::1]:0");
  assert_string_equal(c->metrics.listen_host, "::1");
  assert_int_equal(c->metrics.listen_port, 0);
  assert_int_equal(c->log.level, LOG_DEBUG);
  assert_int_equal(c->log.format, LOG_FORMAT_JSON);
  assert_int_equal(c->shutdown_timeout_ms, 45000);
  config_destroy(c);
}

/* Compares every field of two configs (through print) and the secrets. */
static void
assert_same_config(const struct config *a, const struct config *b)
{
  char *pa = print_to_string(a), *pb = print_to_string(b);

  assert_string_equal(pa, pb);
  assert_string_equal(a->source.connection_string,
                      b->source.connection_string);
  assert_string_equal(a->source.account_key, b->source.account_key);
  assert_string_equal(a->source.sas_token, b->source.sas_token);
  assert_string_equal(a->credential.client_secret,
                      b->credential.client_secret);
  assert_int_equal(a->source.start_time, b->source.start_time);
  assert_int_equal(a->source.poll_interval_ms, b->source.poll_interval_ms);
  assert_int_equal(a->destination.max_request_bytes,
                   b->destination.max_request_bytes);
  assert_string_equal(a->metrics.listen_host, b->metrics.listen_host);
  assert_int_equal(a->metrics.listen_port, b->metrics.listen_port);
  free(pa);
  free(pb);
}

static void
test_round_trip(void **state)
{
  struct config *a = NULL, *b = NULL, *d = NULL;
  char *errs = NULL, *text, *text2;

  (void)state;
  setenv("CREDENTIALS_DIRECTORY", SECRETS_DIR, 1);
  assert_int_equal(config_load("tests/data/config/full.yaml", &a, &errs), 0);
  text = print_to_string(a);
  /* Secrets from files print as their X_file path, so the output loads
     again as it is, secrets included. */
  assert_non_null(strstr(text, "  account_key_file: \"account-key\"\n"));
  assert_null(strstr(text, ACCOUNT_KEY));
  assert_null(strstr(text, CLIENT_SECRET));
  b = load_ok(text);
  unsetenv("CREDENTIALS_DIRECTORY");
  assert_same_config(a, b);
  /* Printing is stable: print(load(print(c))) == print(c). */
  text2 = print_to_string(b);
  assert_string_equal(text, text2);
  free(text);
  free(text2);
  config_destroy(b);

  /* Values that need quoting or escaping survive too. */
  d = load_ok("source:\n  account: acct1\n  container: reports\n"
              "  prefix: 'a \"b\" \\\\ $${x} $${ $'\n"
              "  suffixes: ['.json', \"#x: y\"]\n"
              "  start_from: now\n" DST);
  assert_string_equal(d->source.prefix, "a \"b\" \\\\ ${x} ${ $");
  text = print_to_string(d);
  b = load_ok(text);
  assert_string_equal(b->source.prefix, d->source.prefix);
  assert_string_equal(b->source.suffixes.v[1], "#x: y");
  assert_int_equal(b->source.start_from, CONFIG_START_NOW);
  assert_same_config(d, b);
  free(text);
  config_destroy(b);
  config_destroy(d);
  config_destroy(a);
}

static void
test_inline_secret_round_trip(void **state)
{
  struct config *a, *b;
  char *text, *p, *resupplied;
  char *errs = NULL;
  struct config *c = NULL;

  (void)state;
  a = load_ok(SRC "  account_key: SuperSecretAccountKey0123==\n" DST
              "credential:\n  method: client_secret\n  tenant_id: t1\n"
              "  client_id: c1\n  client_secret: Cl1ent.Secret~Value\n");
  text = print_to_string(a);
  assert_null(strstr(text, "SuperSecretAccountKey0123=="));
  assert_null(strstr(text, "Cl1ent.Secret~Value"));
  assert_non_null(strstr(text, "  account_key: \"<redacted>\"  # set;"));
  assert_non_null(strstr(text, "  client_secret: \"<redacted>\"  # set;"));
  assert_non_null(strstr(text, "  sas_token: \"\"\n"));
  /* The placeholder is refused, not taken for the secret... */
  assert_int_equal(config_load_string(text, strlen(text), "p.yaml", &c, &errs),
                   ERR_CONFIG);
  assert_non_null(strstr(errs, "source.account_key: is the placeholder"));
  assert_non_null(strstr(errs,
                         "credential.client_secret: is the placeholder"));
  free(errs);
  /* ...and with the secrets supplied again, the same config loads. */
  resupplied = strdup(text);
  p = strstr(resupplied, "\"<redacted>\"");
  memcpy(p, "${SS_T_AKEY}", 12);
  p = strstr(resupplied, "\"<redacted>\"");
  memcpy(p, "${SS_T_CSEC}", 12);
  setenv("SS_T_AKEY", "SuperSecretAccountKey0123==", 1);
  setenv("SS_T_CSEC", "Cl1ent.Secret~Value", 1);
  b = load_ok(resupplied);
  assert_same_config(a, b);
  unsetenv("SS_T_AKEY");
  unsetenv("SS_T_CSEC");
  free(resupplied);
  free(text);
  config_destroy(a);
  config_destroy(b);
}

/* ---- invalid configurations -------------------------------------------- */

static void
test_invalid_values(void **state)
{
  (void)state;
  expect_errors(SRC "  poll_interval: 5 parsecs\n" DST,
                "t.yaml:4:18: source.poll_interval: invalid duration "
                "\"5 parsecs\" (expected e.g. 500ms, 30s, 5m, 1h)\n");
  expect_errors(SRC "  poll_interval: 500ms\n" DST,
                "t.yaml:4:18: source.poll_interval: \"500ms\" is out of "
                "range (1s to 1d)\n");
  expect_errors(SRC DST "  concurrency: 0\n",
                "t.yaml:7:16: destination.concurrency: \"0\" is out of range "
                "(1 to 64)\n");
  expect_errors(SRC DST "  max_request_bytes: 2000000\n",
                "t.yaml:7:22: destination.max_request_bytes: \"2000000\" is "
                "out of range (4KiB to 1MiB)\n");
  expect_errors(SRC DST "  max_request_bytes: 1000\n",
                "t.yaml:7:22: destination.max_request_bytes: \"1000\" is out "
                "of range (4KiB to 1MiB)\n");
  expect_errors(SRC "  download_concurrency: many\n" DST,
                "t.yaml:4:25: source.download_concurrency: invalid number "
                "\"many\" (expected a whole number)\n");
  expect_errors(SRC "  download_concurrency: -1\n" DST,
                "t.yaml:4:25: source.download_concurrency: invalid number "
                "\"-1\" (expected a whole number)\n");
  expect_errors(SRC "  auth: sharedkey\n" DST,
                "t.yaml:4:9: source.auth: invalid value \"sharedkey\" "
                "(expected one of: auto, shared_key, sas, entra)\n");
  expect_errors(SRC "  max_blob_bytes: 12XB\n" DST,
                "t.yaml:4:19: source.max_blob_bytes: invalid size \"12XB\" "
                "(expected e.g. 1000000, 64KiB, 512MiB, 1MB)\n");
  expect_errors(SRC "  max_blob_bytes: 99999999999999999999\n" DST,
                "t.yaml:4:19: source.max_blob_bytes: invalid size "
                "\"99999999999999999999\" (expected e.g. 1000000, 64KiB, "
                "512MiB, 1MB)\n");
  expect_errors(SRC DST "shutdown_timeout: 999999999999999999d\n",
                "t.yaml:7:19: shutdown_timeout: invalid duration "
                "\"999999999999999999d\" (expected e.g. 500ms, 30s, 5m, "
                "1h)\n");
  expect_errors(SRC "  start_from: yesterday\n" DST,
                "t.yaml:4:15: source.start_from: invalid value \"yesterday\" "
                "(expected beginning, now or an RFC 3339 time such as "
                "2026-11-30T00:00:00Z)\n");
  expect_errors(SRC "destination:\n  endpoint: ftp://dce.example.com\n"
                "  dcr_immutable_id: dcr-0123\n",
                "t.yaml:5:13: destination.endpoint: invalid URL "
                "\"ftp://dce.example.com\" (expected http:// or https://, a "
                "host, an optional port and path, and no query)\n");
  expect_errors(SRC DST "metrics:\n  listen: 9464\n",
                "t.yaml:8:11: metrics.listen: invalid listen address "
                "\"9464\" (expected HOST:PORT such as 127.0.0.1:9464 or "
                "[::1]:9464, or \"\" to disable)\n");
  expect_errors("source:\n  account: acct1\n  container: Reports_2026\n" DST,
                "t.yaml:3:14: source.container: invalid container name "
                "\"Reports_2026\" (3 to 63 lowercase letters, digits and "
                "single hyphens, starting and ending with a letter or "
                "digit)\n");
  expect_errors("source:\n  account: My-Account\n  container: reports\n" DST,
                "t.yaml:2:12: source.account: invalid storage account name "
                "\"My-Account\" (3 to 24 lowercase letters and digits)\n");
  expect_errors(SRC DST "credential:\n  tenant_id: contoso/evil\n",
                "t.yaml:8:14: credential.tenant_id: invalid tenant id "
                "\"contoso/evil\" (a GUID or a domain such as "
                "contoso.onmicrosoft.com)\n");
  expect_errors(SRC "destination:\n  endpoint: https://dce.example.com\n"
                "  dcr_immutable_id: dcr/../x\n",
                "t.yaml:6:21: destination.dcr_immutable_id: invalid value "
                "\"dcr/../x\" (letters, digits, '-', '_' and '.' only)\n");
  expect_errors(SRC DST "state:\n  directory: \"\"\n",
                "t.yaml:8:14: state.directory: must not be empty\n");
  expect_errors(SRC "  suffixes: ['.json', '']\n" DST,
                "t.yaml:4:23: source.suffixes: an empty suffix matches every "
                "blob; use [] for that\n");
}

/*
 * A secret written under the wrong key (an account key as the account
 * name, a SAS in a URL, a client secret as a duration or as a key name) is
 * not repeated by the error message: the configuration failed to load, so
 * its secrets were never registered with the log scrubber, and the message
 * goes to the journal. Found by tests/integration/test_secrets.sh.
 */
static void
test_misplaced_secret_not_repeated(void **state)
{
  static const char *const lines[] = {
    "  account: U3BlY3RyYVNlY3JldEFjY3RLZXktMDEyMzQ1Njc4OQ==\n",
    "  container: U3BlY3RyYVNlY3JldEFjY3RLZXktMDEyMzQ1Njc4OQ==\n",
    "  poll_interval: cs8Q~SpectraClientSecret2026\n",
    "  endpoint: https://acct.blob.core.windows.net/?sv=2023&sig=S1gVal\n",
    "  max_blob_bytes: \"sv=2023-11-03&sp=rl&sig=S1gVal%3D\"\n",
    "  cs8Q~SpectraClientSecret2026: x\n",
  };

  (void)state;
  for(size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
    struct config *c = NULL;
    char *errs = NULL, yaml[512];

    snprintf(yaml, sizeof(yaml), "source:\n%s  container: reports\n"
             "destination:\n  type: file\n  path: /tmp/x.ndjson\n",
             lines[i]);
    assert_int_equal(config_load_string(yaml, strlen(yaml), "t.yaml", &c,
                                        &errs), ERR_CONFIG);
    assert_non_null(errs);
    if(strstr(errs, "U3Bl") || strstr(errs, "SpectraClientSecret") ||
       strstr(errs, "S1gVal"))
      fail_msg("a secret is repeated in:\n%s", errs);
    /* The message still says where. */
    assert_non_null(strstr(errs, "t.yaml:2:"));
    free(errs);
  }
  /* Ordinary values are still quoted. */
  expect_errors(SRC "  auth: sharedkey\n" DST,
                "t.yaml:4:9: source.auth: invalid value \"sharedkey\" "
                "(expected one of: auto, shared_key, sas, entra)\n");
}

static void
test_invalid_structure(void **state)
{
  (void)state;
  expect_errors(SRC "  poll_intervall: 30s\n" DST,
                "t.yaml:4:3: source.poll_intervall: unknown key (did you "
                "mean poll_interval?)\n");
  expect_errors("sources:\n  account: x\n",
                "t.yaml:1:1: sources: unknown key (did you mean source?)\n");
  expect_errors(SRC DST "  poll_interval: 30s\n",
                "t.yaml:7:3: destination.poll_interval: unknown key (did you "
                "mean source.poll_interval?)\n");
  expect_errors(SRC DST "log:\n  colour: true\n",
                "t.yaml:8:3: log.colour: unknown key\n");
  expect_errors("source:\n  account: acct1\n  container: {name: reports}\n"
                DST,
                "t.yaml:3:14: source.container: expected a single value, "
                "found a mapping\n");
  expect_errors(SRC "  suffixes: .json\n" DST,
                "t.yaml:4:13: source.suffixes: expected a list such as "
                "[\".json\", \".json.gz\"], found a single value\n");
  expect_errors(SRC "  suffixes: [[.json]]\n" DST,
                "t.yaml:4:14: source.suffixes: list items must be single "
                "values, found a list\n");
  expect_errors("source: reports\n" DST,
                "t.yaml:1:9: source: expected a mapping of keys, found a "
                "single value\n");
  expect_errors("- source\n- destination\n",
                "t.yaml:1:1: expected a mapping of sections (source:, "
                "destination:, ...) at the top level, found a list\n");
  expect_errors(SRC "  [a, b]: c\n" DST,
                "t.yaml:4:3: source: a key must be a name, found a list\n");
  expect_errors(SRC "  container: other\n" DST,
                "t.yaml:4:3: source.container: duplicate key (first at line "
                "3)\n");
  expect_errors(SRC DST "source:\n  prefix: x\n",
                "t.yaml:7:1: source: duplicate key (first at line 1)\n");
  expect_errors("a: 1\n---\nb: 2\n",
                "t.yaml:2:1: only one YAML document is allowed\n");
  expect_errors("source:\n  account: [acct1\n",
                "t.yaml:3:1: YAML syntax error: did not find expected ',' or "
                "']' while parsing a flow sequence (line 2)\n");
  expect_errors("source:\n  account: acct1\n   container: x: y\n",
                "t.yaml:3:13: YAML syntax error: mapping values are not "
                "allowed in this context\n");
  expect_errors("source:\n  account: \"acct\xff\"\n",
                "t.yaml:2:17: YAML syntax error: invalid leading UTF-8 "
                "octet\n");
  expect_errors("a: [[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]\n",
                "t.yaml:1:19: nested more than 16 levels deep\n");
  expect_errors(SRC "  prefix: \"a\\0b\"\n" DST,
                "t.yaml:4:11: source.prefix: a NUL character is not "
                "allowed\n");
}

static void
test_invalid_requirements(void **state)
{
  (void)state;
  expect_errors("",
                "t.yaml:1:1: source.account: required unless source.endpoint "
                "or source.connection_string is set\n"
                "t.yaml:1:1: source.container: required\n"
                "t.yaml:1:1: destination.endpoint: required when "
                "destination.type is logs_ingestion\n"
                "t.yaml:1:1: destination.dcr_immutable_id: required when "
                "destination.type is logs_ingestion\n");
  expect_errors(SRC "destination:\n  stream: Custom-X_CL\n",
                "t.yaml:4:1: destination.endpoint: required when "
                "destination.type is logs_ingestion\n"
                "t.yaml:4:1: destination.dcr_immutable_id: required when "
                "destination.type is logs_ingestion\n");
  expect_errors(SRC "destination:\n  type: file\n",
                "t.yaml:4:1: destination.path: required when "
                "destination.type is file\n");
  expect_errors(SRC DST "credential:\n  method: client_secret\n",
                "t.yaml:7:1: credential.tenant_id: required when "
                "credential.method is client_secret\n"
                "t.yaml:7:1: credential.client_id: required when "
                "credential.method is client_secret\n"
                "t.yaml:7:1: credential.client_secret: required when "
                "credential.method is client_secret (or "
                "credential.client_secret_file)\n");
  expect_errors(SRC DST "credential:\n  method: client_certificate\n"
                "  tenant_id: t1\n  client_id: c1\n",
                "t.yaml:7:1: credential.certificate_file: required when "
                "credential.method is client_certificate\n");
  expect_errors(SRC "  auth: shared_key\n" DST,
                "t.yaml:1:1: source.account_key: required when source.auth "
                "is shared_key (or source.account_key_file)\n");
  expect_errors("source:\n  endpoint: http://127.0.0.1:10000/devstoreaccount1"
                "\n  account_key: abcdefgh\n  container: reports\n" DST,
                "t.yaml:1:1: source.account: required when source.auth is "
                "shared_key (the account name is part of the signature)\n");
  expect_errors(SRC "  auth: sas\n  sas_token: \"\"\n" DST,
                "t.yaml:5:3: source.sas_token: required when source.auth is "
                "sas (or source.sas_token_file)\n");
  expect_errors(SRC "  auth: entra\n  sas_token: sv=1&sig=abc\n" DST,
                "t.yaml:5:3: source.sas_token: not used when source.auth is "
                "entra\n");
  expect_errors(SRC "  account_key: abcdefgh\n  sas_token: sv=1&sig=abc\n"
                DST,
                "t.yaml:5:3: source.sas_token: cannot be used together with "
                "source.account_key; set source.auth to say which one to "
                "use\n");
  expect_errors(SRC "  account_key: abcdefgh\n  account_key_file: /nonexist\n"
                DST,
                "t.yaml:5:3: source.account_key_file: cannot be used "
                "together with source.account_key\n");
  expect_errors("source:\n  connection_string: UseDevelopmentStorage=true\n"
                "  account: acct1\n  container: reports\n" DST,
                "t.yaml:3:3: source.account: not allowed together with "
                "source.connection_string (which holds it)\n");
  expect_errors(SRC DST "  max_field_bytes: 64KiB\n"
                "  max_request_bytes: 32KiB\n",
                "t.yaml:7:20: destination.max_field_bytes: must not exceed "
                "destination.max_request_bytes (32KiB)\n");
  expect_errors(SRC DST "credential:\n  method: managed_identity\n"
                "  client_id: a\n  object_id: b\n",
                "t.yaml:10:3: credential.object_id: set only one of "
                "credential.client_id, credential.object_id and "
                "credential.resource_id\n");
}

static void
test_many_errors_file(void **state)
{
  struct config *c = NULL;
  char *errs = NULL;

  (void)state;
  assert_int_equal(config_load("tests/data/config/many-errors.yaml", &c,
                               &errs), ERR_CONFIG);
  assert_null(c);
  assert_string_equal(errs,
    "tests/data/config/many-errors.yaml:5:18: source.poll_interval: invalid "
    "duration \"5 parsecs\" (expected e.g. 500ms, 30s, 5m, 1h)\n"
    "tests/data/config/many-errors.yaml:6:25: source.download_concurrency: "
    "\"0\" is out of range (1 to 64)\n"
    "tests/data/config/many-errors.yaml:7:17: source.after_ingest: invalid "
    "value \"archive\" (expected one of: keep, delete)\n"
    "tests/data/config/many-errors.yaml:11:22: destination.max_request_bytes: "
    "\"2MiB\" is out of range (4KiB to 1MiB)\n"
    "tests/data/config/many-errors.yaml:12:3: destination.compresion: unknown "
    "key (did you mean compression?)\n"
    "tests/data/config/many-errors.yaml:14:10: log.level: invalid value "
    "\"verbose\" (expected one of: error, warn, info, debug)\n");
  free(errs);
}

static void
test_too_many_errors(void **state)
{
  struct buf b;
  struct config *c = NULL;
  char *errs = NULL;
  size_t lines = 0;

  (void)state;
  buf_init(&b, 1 << 20);
  assert_int_equal(buf_puts(&b, "source:\n"), 0);
  for(int i = 0; i < 80; i++)
    assert_int_equal(buf_printf(&b, "  unknown%d: x\n", i), 0);
  assert_int_equal(config_load_string(b.data, b.len, "t.yaml", &c, &errs),
                   ERR_CONFIG);
  for(const char *p = errs; *p; p++)
    lines += *p == '\n';
  assert_int_equal(lines, 51);
  assert_non_null(strstr(errs, "t.yaml:51:3: source.unknown49: unknown"));
  assert_non_null(strstr(errs, "\nt.yaml: too many errors; stopping\n"));
  free(errs);
  buf_free(&b);
}

static void
test_load_file_errors(void **state)
{
  struct config *c = NULL;
  char *errs = NULL, *big, *path;

  (void)state;
  assert_int_equal(config_load("tests/data/config/nope.yaml", &c, &errs),
                   ERR_NOTFOUND);
  assert_null(c);
  assert_string_equal(errs, "tests/data/config/nope.yaml: cannot open: No "
                      "such file or directory\n");
  free(errs);
  assert_int_equal(config_load("tests/data/config", &c, &errs), ERR_IO);
  assert_string_equal(errs, "tests/data/config: cannot read: Is a "
                      "directory\n");
  free(errs);
  big = malloc(CONFIG_MAX_FILE_BYTES + 2);
  memset(big, '#', CONFIG_MAX_FILE_BYTES + 1);
  path = temp_file(big, CONFIG_MAX_FILE_BYTES + 1, 0600);
  assert_int_equal(config_load(path, &c, &errs), ERR_CONFIG);
  assert_non_null(strstr(errs, ": larger than 1048576 bytes"));
  free(errs);
  /* errors may be NULL when the caller does not want the messages. */
  assert_int_equal(config_load(path, &c, NULL), ERR_CONFIG);
  assert_null(c);
  unlink(path);
  free(path);
  free(big);
}

/* ---- ${VAR} ------------------------------------------------------------ */

static void
test_env_expansion(void **state)
{
  struct config *c;

  (void)state;
  setenv("SS_T_ACCOUNT", "acct9", 1);
  setenv("SS_T_EMPTY", "", 1);
  setenv("SS_T_CS", "UseDevelopmentStorage=true", 1);
  unsetenv("SS_T_UNSET");
  c = load_ok("source:\n  account: ${SS_T_ACCOUNT}\n  container: reports\n"
              "  prefix: \"pre/$${X}/${SS_T_ACCOUNT}/$HOME/${SS_T_EMPTY}$\"\n"
              "  poll_interval: ${SS_T_UNSET}\n"
              "  connection_string: ${SS_T_UNSET}\n"
              "  suffixes: [\".${SS_T_ACCOUNT}\"]\n" DST);
  assert_string_equal(c->source.account, "acct9");
  assert_string_equal(c->source.prefix, "pre/${X}/acct9/$HOME/$");
  /* A whole ${VAR} that is unset or empty leaves the default. */
  assert_int_equal(c->source.poll_interval_ms, 30000);
  assert_string_equal(c->source.connection_string, "");
  assert_string_equal(c->source.suffixes.v[0], ".acct9");
  config_destroy(c);

  /* The spec's "connection_string or the three below" idiom. */
  c = load_ok("source:\n  connection_string: ${SS_T_CS}\n"
              "  container: reports\n" DST);
  assert_string_equal(c->source.connection_string,
                      "UseDevelopmentStorage=true");
  assert_int_equal(c->source.auth, CONFIG_AUTH_AUTO);
  config_destroy(c);

  expect_errors("source:\n  account: acct1\n  container: "
                "reports-${SS_T_UNSET}\n" DST,
                "t.yaml:3:14: source.container: environment variable "
                "SS_T_UNSET is not set\n");
  expect_errors(SRC "destination:\n  endpoint: ${SS_T_UNSET}\n"
                "  dcr_immutable_id: ${SS_T_EMPTY}\n",
                "t.yaml:5:3: destination.endpoint: required when "
                "destination.type is logs_ingestion (${SS_T_UNSET} is not "
                "set or empty)\n"
                "t.yaml:6:3: destination.dcr_immutable_id: required when "
                "destination.type is logs_ingestion (${SS_T_EMPTY} is not "
                "set or empty)\n");
  expect_errors(SRC "  prefix: ${1BAD}\n" DST,
                "t.yaml:4:11: source.prefix: invalid ${...} reference "
                "(expected ${NAME} with NAME made of letters, digits and _; "
                "write $${ for a literal ${)\n");
  expect_errors(SRC "  prefix: a${SS_T_ACCOUNT\n" DST,
                "t.yaml:4:11: source.prefix: invalid ${...} reference "
                "(expected ${NAME} with NAME made of letters, digits and _; "
                "write $${ for a literal ${)\n");
  expect_errors(SRC "  suffixes: [\"${SS_T_UNSET}\"]\n" DST,
                "t.yaml:4:14: source.suffixes: environment variable "
                "SS_T_UNSET is not set or empty\n");
  setenv("SS_T_POLL", "5 parsecs", 1);
  expect_errors(SRC "  poll_interval: ${SS_T_POLL}\n" DST,
                "t.yaml:4:18: source.poll_interval: invalid duration "
                "\"5 parsecs\" (expected e.g. 500ms, 30s, 5m, 1h)\n");
  unsetenv("SS_T_POLL");
  unsetenv("SS_T_ACCOUNT");
  unsetenv("SS_T_EMPTY");
  unsetenv("SS_T_CS");
}

/* ---- X_file secrets ----------------------------------------------------- */

static void
test_secret_files(void **state)
{
  struct config *c;
  char yaml[512], *path, *big;

  (void)state;
  /* Relative to $CREDENTIALS_DIRECTORY; CRLF trimmed. */
  setenv("CREDENTIALS_DIRECTORY", SECRETS_DIR, 1);
  c = load_ok(SRC "  account_key_file: account-key\n" DST
              "credential:\n  method: client_secret\n  tenant_id: t1\n"
              "  client_id: c1\n  client_secret_file: client-secret\n");
  assert_string_equal(c->source.account_key, ACCOUNT_KEY);
  assert_int_equal(c->source.auth, CONFIG_AUTH_SHARED_KEY);
  assert_string_equal(c->credential.client_secret, CLIENT_SECRET);
  config_destroy(c);

  /* An absolute path ignores $CREDENTIALS_DIRECTORY. */
  path = temp_file("sv=2023-11-03&sp=rl&sig=Zm9vYmFy\n\n", 34, 0600);
  snprintf(yaml, sizeof(yaml), SRC "  sas_token_file: %s\n" DST, path);
  c = load_ok(yaml);
  assert_string_equal(c->source.sas_token, "sv=2023-11-03&sp=rl&sig=Zm9vYmFy");
  assert_int_equal(c->source.auth, CONFIG_AUTH_SAS);
  config_destroy(c);
  unlink(path);
  free(path);

  /* Without $CREDENTIALS_DIRECTORY, relative to the working directory. */
  unsetenv("CREDENTIALS_DIRECTORY");
  c = load_ok(SRC "  account_key_file: " SECRETS_DIR "/account-key\n" DST);
  assert_string_equal(c->source.account_key, ACCOUNT_KEY);
  config_destroy(c);
  expect_errors(SRC "  account_key_file: account-key\n" DST,
                "t.yaml:4:21: source.account_key_file: cannot open "
                "account-key: No such file or directory\n");

  setenv("CREDENTIALS_DIRECTORY", SECRETS_DIR, 1);
  expect_errors(SRC "  account_key_file: nope\n" DST,
                "t.yaml:4:21: source.account_key_file: cannot open "
                SECRETS_DIR "/nope: No such file or directory\n");
  expect_errors(SRC "  account_key_file: /tmp\n" DST,
                "t.yaml:4:21: source.account_key_file: /tmp is not a regular "
                "file\n");
  /* X_file first, then X: the second one is the error. */
  expect_errors(SRC "  account_key_file: account-key\n"
                "  account_key: abcdefgh\n"
                DST,
                "t.yaml:5:3: source.account_key: cannot be used together "
                "with source.account_key_file\n");
  /* An empty X beside X_file is "not set": it neither conflicts nor
     overwrites the file's value. */
  c = load_ok(SRC "  account_key_file: account-key\n  account_key: \"\"\n"
              DST);
  assert_string_equal(c->source.account_key, ACCOUNT_KEY);
  config_destroy(c);
  unsetenv("CREDENTIALS_DIRECTORY");

  path = temp_file("\n\r\n", 3, 0600);
  snprintf(yaml, sizeof(yaml), SRC "  account_key_file: %s\n" DST, path);
  {
    char want[256];

    snprintf(want, sizeof(want), "t.yaml:4:21: source.account_key_file: %s "
             "is empty\n", path);
    expect_errors(yaml, want);
  }
  unlink(path);
  free(path);

  big = malloc(CONFIG_MAX_SECRET_FILE_BYTES + 1);
  memset(big, 'k', CONFIG_MAX_SECRET_FILE_BYTES + 1);
  path = temp_file(big, CONFIG_MAX_SECRET_FILE_BYTES + 1, 0600);
  snprintf(yaml, sizeof(yaml), SRC "  account_key_file: %s\n" DST, path);
  {
    char want[256];

    snprintf(want, sizeof(want), "t.yaml:4:21: source.account_key_file: %s "
             "is larger than 65536 bytes\n", path);
    expect_errors(yaml, want);
  }
  unlink(path);
  free(path);
  /* Exactly at the cap is accepted. */
  path = temp_file(big, CONFIG_MAX_SECRET_FILE_BYTES, 0600);
  snprintf(yaml, sizeof(yaml), SRC "  account_key_file: %s\n" DST, path);
  c = load_ok(yaml);
  assert_int_equal(strlen(c->source.account_key),
                   CONFIG_MAX_SECRET_FILE_BYTES);
  config_destroy(c);
  unlink(path);
  free(path);
  free(big);
}

/* ---- secrets never shown ------------------------------------------------ */

static void
test_secrets_not_in_errors(void **state)
{
  static const char *const cases[] = {
    SRC "  account_key: \"SECRETXYZ\\tmore\"\n" DST,
    SRC "  auth: sas\n  account_key: SECRETXYZ0123\n"
        "  sas_token: SECRETXYZ0456\n" DST,
    SRC "  auth: entra\n  account_key: SECRETXYZ0123\n" DST,
    "source:\n  connection_string: AccountKey=SECRETXYZ\n"
    "  account_key: SECRETXYZ0123\n  container: reports\n" DST,
    SRC DST "credential:\n  client_secret: \"SECRETXYZ\\u0001\"\n",
    SRC DST "credential:\n  client_secret: [SECRETXYZ]\n",
    SRC DST "credential:\n  client_secret: SECRETXYZ\n  client_secretz: "
        "SECRETXYZ\n",
    "source:\n  endpoint: https://user:SECRETXYZ@host.example.com\n"
    "  container: reports\n" DST,
  };
  struct config *c = NULL;
  char *errs = NULL;

  (void)state;
  for(size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    assert_int_equal(config_load_string(cases[i], strlen(cases[i]), "t.yaml",
                                        &c, &errs), ERR_CONFIG);
    if(strstr(errs, "SECRETXYZ"))
      fail_msg("case %zu shows the secret: %s", i, errs);
    free(errs);
  }
  expect_errors(SRC "  account_key: \"SECRETXYZ\\tmore\"\n" DST,
                "t.yaml:4:16: source.account_key: contains a control "
                "character (the value is a secret and not shown)\n");
  expect_errors("source:\n  endpoint: https://user:SECRETXYZ@host.example.com"
                "\n  container: reports\n" DST,
                "t.yaml:2:13: source.endpoint: invalid URL (user information "
                "before '@' is not allowed; the value is not shown)\n");
}

static void
test_print_redacts(void **state)
{
  struct config *c;
  char *text;

  (void)state;
  c = load_ok("source:\n  connection_string: \"DefaultEndpointsProtocol=https;"
              "AccountName=acct1;AccountKey=Q29ubmVjdGlvbktleQ==\"\n"
              "  container: reports\n" DST);
  text = print_to_string(c);
  assert_null(strstr(text, "Q29ubmVjdGlvbktleQ=="));
  assert_null(strstr(text, "AccountName=acct1"));
  assert_non_null(strstr(text, "  connection_string: \"<redacted>\"  # set"));
  assert_non_null(strstr(text, "  account_key: \"\"\n"));
  free(text);
  config_destroy(c);
}

static void
test_register_secrets(void **state)
{
  struct config *c;
  char *out;

  (void)state;
  c = load_ok("source:\n  connection_string: \"BlobEndpoint=https://a.blob."
              "core.windows.net;AccountKey=Q29ubmVjdGlvbktleQ==;"
              "SharedAccessSignature=sv=2023&sig=U2lnSW5Db25u\"\n"
              "  container: reports\n" DST
              "credential:\n  client_secret: Cl1ent.Secret~Value\n");
  assert_int_equal(config_register_secrets(c), 0);
  config_destroy(c);
  c = load_ok(SRC
              "  sas_token: \"?sv=2023-11-03&sp=rl&sig=U2FzU2lnbmF0dXJl\"\n"
              DST);
  /* The '?' that portals prepend is dropped. */
  assert_string_equal(c->source.sas_token,
                      "sv=2023-11-03&sp=rl&sig=U2FzU2lnbmF0dXJl");
  assert_int_equal(config_register_secrets(c), 0);
  config_destroy(c);

  capture_start();
  log_info("t", "key Q29ubmVjdGlvbktleQ== conn-sig U2lnSW5Db25u "
           "secret Cl1ent.Secret~Value url ?sig=U2FzU2lnbmF0dXJl&x=1");
  out = capture_end();
  assert_non_null(strstr(out, "key *** conn-sig *** secret *** url "
                          "?sig=***&x=1"));
  free(out);
  log_secret_clear();
}

static void
test_permission_warning(void **state)
{
  static const char yaml[] = SRC "  account_key: SuperSecretAccountKey0123==\n"
                             DST;
  struct config *c = NULL;
  char *path, *out, want[512];

  (void)state;
  path = temp_file(yaml, strlen(yaml), 0644);
  capture_start();
  assert_int_equal(config_load(path, &c, NULL), 0);
  out = capture_end();
  snprintf(want, sizeof(want), "config: %s holds a secret "
           "(source.account_key) and is readable by group or others (mode "
           "0644); chmod 600 it, or move the secret to source.account_key_file"
           " or the environment", path);
  assert_non_null(strstr(out, want));
  assert_null(strstr(out, "SuperSecretAccountKey0123=="));
  free(out);
  config_destroy(c);

  assert_int_equal(chmod(path, 0600), 0);
  capture_start();
  assert_int_equal(config_load(path, &c, NULL), 0);
  out = capture_end();
  assert_null(strstr(out, "holds a secret"));
  free(out);
  config_destroy(c);
  unlink(path);
  free(path);

  /* A secret from the environment does not make the file sensitive. */
  setenv("SS_T_AKEY", "SuperSecretAccountKey0123==", 1);
  path = temp_file(SRC "  account_key: ${SS_T_AKEY}\n" DST,
                   strlen(SRC "  account_key: ${SS_T_AKEY}\n" DST), 0644);
  capture_start();
  assert_int_equal(config_load(path, &c, NULL), 0);
  out = capture_end();
  assert_null(strstr(out, "holds a secret"));
  free(out);
  config_destroy(c);
  unlink(path);
  free(path);
  unsetenv("SS_T_AKEY");
}

static void
test_plain_http_warning(void **state)
{
  struct config *c;
  char *out;

  (void)state;
  capture_start();
  c = load_ok(SRC "destination:\n  endpoint: http://dce.example.com\n"
              "  dcr_immutable_id: dcr-0123\n");
  out = capture_end();
  assert_non_null(strstr(out, "config: t.yaml: destination.endpoint uses "
                          "plain http to a host that is not loopback"));
  free(out);
  config_destroy(c);
  capture_start();
  c = load_ok(SRC "destination:\n  endpoint: http://127.0.0.1:8080\n"
              "  dcr_immutable_id: dcr-0123\n");
  out = capture_end();
  assert_null(strstr(out, "plain http"));
  free(out);
  config_destroy(c);
}

/* ---- the example configuration and the reference ------------------------ */

/*
 * Collects "section.key" for every key line of config_print output (and of
 * the example file, which has the same shape): a line "NAME:" opens a
 * section, "  key: ..." is a key in it, "key: value" a top-level key.
 */
static size_t
collect_keys(const char *text, char keys[][64], size_t max)
{
  char section[32] = "";
  size_t n = 0;

  for(const char *line = text; *line; ) {
    const char *end = strchr(line, '\n');
    size_t len = end ? (size_t)(end - line) : strlen(line);
    const char *colon = memchr(line, ':', len);

    if(colon && line[0] != '#' && line[0] != ' ' && colon + 1 == line + len)
      snprintf(section, sizeof(section), "%.*s", (int)(colon - line), line);
    else if(colon && line[0] != '#' && line[0] != ' ' && n < max)
      snprintf(keys[n++], 64, "%.*s", (int)(colon - line), line);
    else if(colon && !strncmp(line, "  ", 2) && line[2] != ' ' &&
            line[2] != '#' && n < max)
      snprintf(keys[n++], 64, "%s.%.*s", section, (int)(colon - line - 2),
               line + 2);
    line += len + (end ? 1 : 0);
  }
  return n;
}

static void
test_example_and_docs(void **state)
{
  static char want[64][64], have[64][64];
  struct config *d = NULL, *c = NULL;
  char *errs = NULL, *text, *example, *docs, *dtext;
  size_t nw, nh;

  (void)state;
  assert_int_equal(config_defaults(&d), 0);
  text = print_to_string(d);
  nw = collect_keys(text, want, 64);
  assert_true(nw >= 40);
  example = slurp("conf/spectra-sentinel.yaml");
  docs = slurp("docs/configuration.md");
  nh = collect_keys(example, have, 64);
  for(size_t i = 0; i < nw; i++) {
    size_t j;
    char tick[80];

    for(j = 0; j < nh && strcmp(want[i], have[j]); j++)
      ;
    if(j == nh)
      fail_msg("conf/spectra-sentinel.yaml lacks %s", want[i]);
    snprintf(tick, sizeof(tick), "`%.64s`", want[i]);
    if(!strstr(docs, tick))
      fail_msg("docs/configuration.md lacks %s", tick);
  }
  for(const char *x = "source.connection_string_file\0source.account_key_file"
      "\0source.sas_token_file\0credential.client_secret_file\0"; *x;
      x += strlen(x) + 1) {
    char tick[80];

    snprintf(tick, sizeof(tick), "`%.64s`", x);
    if(!strstr(docs, tick))
      fail_msg("docs/configuration.md lacks %s", tick);
  }

  /* The example loads, and every value in it is the default except the
     placeholders a deployment must replace. */
  assert_int_equal(config_load("conf/spectra-sentinel.yaml", &c, &errs), 0);
  assert_null(errs);
  free(c->source.account);
  free(c->source.endpoint);
  free(c->source.container);
  free(c->destination.endpoint);
  free(c->destination.dcr_immutable_id);
  c->source.account = strdup("");
  c->source.endpoint = strdup("");
  c->source.container = strdup("");
  c->destination.endpoint = strdup("");
  c->destination.dcr_immutable_id = strdup("");
  assert_int_equal(c->source.auth, CONFIG_AUTH_ENTRA);
  c->source.auth = CONFIG_AUTH_AUTO;
  dtext = print_to_string(c);
  assert_string_equal(dtext, text);
  free(dtext);
  free(text);
  free(example);
  free(docs);
  config_destroy(c);
  config_destroy(d);
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_durations),
    cmocka_unit_test(test_sizes),
    cmocka_unit_test(test_times),
    cmocka_unit_test(test_defaults),
    cmocka_unit_test(test_minimal_file),
    cmocka_unit_test(test_full_file),
    cmocka_unit_test(test_round_trip),
    cmocka_unit_test(test_inline_secret_round_trip),
    cmocka_unit_test(test_invalid_values),
    cmocka_unit_test(test_misplaced_secret_not_repeated),
    cmocka_unit_test(test_invalid_structure),
    cmocka_unit_test(test_invalid_requirements),
    cmocka_unit_test(test_many_errors_file),
    cmocka_unit_test(test_too_many_errors),
    cmocka_unit_test(test_load_file_errors),
    cmocka_unit_test(test_env_expansion),
    cmocka_unit_test(test_secret_files),
    cmocka_unit_test(test_secrets_not_in_errors),
    cmocka_unit_test(test_print_redacts),
    cmocka_unit_test(test_register_secrets),
    cmocka_unit_test(test_permission_warning),
    cmocka_unit_test(test_plain_http_warning),
    cmocka_unit_test(test_example_and_docs),
  };

  /* Warnings (plain http, readable secret files) would clutter the output;
     the tests that look for them capture them explicitly. */
  log_set_level(LOG_ERROR);
  unsetenv("CREDENTIALS_DIRECTORY");
  return cmocka_run_group_tests(tests, NULL, NULL);
}
