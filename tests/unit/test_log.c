/*
 * test_log.c: levels, formats and the secret scrubbing of log.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "err.h"
#include "log.h"

/* Bytes before the secret in emit_long: its cut (4092) falls inside. */
#define LONG_PAD 4085

/* Captures what the logger writes during fn into out. */
static void
capture(char *out, size_t cap, void (*fn)(void))
{
  int fds[2];
  ssize_t n;

  assert_int_equal(pipe(fds), 0);
  log_set_fd(fds[1]);
  fn();
  log_set_fd(2);
  close(fds[1]);
  n = read(fds[0], out, cap - 1);
  out[n < 0 ? 0 : n] = '\0';
  close(fds[0]);
}

static void
emit_levels(void)
{
  log_debug("t", "hidden debug");
  log_info("t", "shown info");
  log_error("t", "shown error");
}

static void
test_level_filter(void **state)
{
  char out[4096];

  (void)state;
  log_set_format(LOG_FORMAT_TEXT);
  log_set_level(LOG_INFO);
  capture(out, sizeof(out), emit_levels);
  assert_null(strstr(out, "hidden debug"));
  assert_non_null(strstr(out, "info  t: shown info"));
  assert_non_null(strstr(out, "error t: shown error"));
  /* UTC timestamp with a Z suffix opens every line. */
  assert_int_equal(out[4], '-');
  assert_non_null(strstr(out, "Z info"));
}

static void
emit_secret(void)
{
  log_warn("storage", "GET https://x/c?sv=2023&sig=S3cr3tSig%%2Fvalue failed\nforged line");
}

static void
test_secret_scrubbed_and_newlines_folded(void **state)
{
  char out[4096];

  (void)state;
  log_set_format(LOG_FORMAT_TEXT);
  assert_int_equal(log_secret_add("S3cr3tSig%2Fvalue"), 0);
  capture(out, sizeof(out), emit_secret);
  assert_null(strstr(out, "S3cr3tSig"));
  assert_non_null(strstr(out, "sig=*** failed forged line"));
  /* Exactly one line. */
  assert_non_null(strchr(out, '\n'));
  assert_null(strchr(strchr(out, '\n') + 1, '\n'));
  log_secret_clear();
}

static void
emit_json(void)
{
  log_info("cfg", "quote \" backslash \\ tab \t end");
}

static void
test_json_format_is_valid_json(void **state)
{
  char out[4096];
  json_t *j;
  json_error_t e;

  (void)state;
  log_set_format(LOG_FORMAT_JSON);
  capture(out, sizeof(out), emit_json);
  log_set_format(LOG_FORMAT_TEXT);
  j = json_loads(out, JSON_DISABLE_EOF_CHECK, &e);
  assert_non_null(j);
  assert_string_equal(json_string_value(json_object_get(j, "level")), "info");
  assert_string_equal(json_string_value(json_object_get(j, "module")), "cfg");
  assert_string_equal(json_string_value(json_object_get(j, "msg")),
                      "quote \" backslash \\ tab \t end");
  json_decref(j);
}

static void
test_level_parse(void **state)
{
  enum log_level l;

  (void)state;
  assert_int_equal(log_level_parse("debug", &l), 0);
  assert_int_equal(l, LOG_DEBUG);
  assert_int_not_equal(log_level_parse("verbose", &l), 0);
}

/* The message emit_text logs (set by each test). */
static const char *text_to_log;

static void
emit_text(void)
{
  log_warn("t", "%s", text_to_log);
}

/* Logs text and returns what the logger wrote, in out. */
static const char *
logged(char *out, size_t cap, const char *text)
{
  text_to_log = text;
  capture(out, cap, emit_text);
  return out;
}

static void
test_secret_remove_stops_scrubbing(void **state)
{
  char out[4096];

  (void)state;
  log_set_format(LOG_FORMAT_TEXT);
  log_set_level(LOG_INFO);
  assert_int_equal(log_secret_add("tok-AAAA-1111"), 0);
  assert_int_equal(log_secret_count(), 1);
  assert_non_null(strstr(logged(out, sizeof(out), "a tok-AAAA-1111 b"),
                         "t: a *** b"));
  assert_int_equal(log_secret_remove("tok-AAAA-1111"), 0);
  assert_int_equal(log_secret_count(), 0);
  /* Forgotten: the same text is written as it is. */
  assert_non_null(strstr(logged(out, sizeof(out), "a tok-AAAA-1111 b"),
                         "t: a tok-AAAA-1111 b"));
  assert_int_equal(log_secret_remove("tok-AAAA-1111"), ERR_NOTFOUND);
  /* Too short to be registered: nothing to remove, and no error. */
  assert_int_equal(log_secret_remove("abc"), 0);
  log_secret_clear();
}

static void
test_secret_registrations_are_counted(void **state)
{
  char out[4096];

  (void)state;
  log_set_format(LOG_FORMAT_TEXT);
  /* Two modules register the same secret; one of them rotates it away. */
  assert_int_equal(log_secret_add("shared-secret-42"), 0);
  assert_int_equal(log_secret_add("shared-secret-42"), 0);
  assert_int_equal(log_secret_count(), 1);
  assert_int_equal(log_secret_remove("shared-secret-42"), 0);
  assert_null(strstr(logged(out, sizeof(out), "x shared-secret-42"),
                     "shared-secret-42"));
  assert_int_equal(log_secret_remove("shared-secret-42"), 0);
  assert_non_null(strstr(logged(out, sizeof(out), "x shared-secret-42"),
                         "shared-secret-42"));
  assert_int_equal(log_secret_count(), 0);
  log_secret_clear();
}

static void
test_secret_rotation_keeps_the_list_small(void **state)
{
  char out[4096], tok[64], prev[64] = "";

  (void)state;
  log_set_format(LOG_FORMAT_TEXT);
  assert_int_equal(log_secret_add("config-client-secret"), 0);
  /* A day of hourly tokens, each unregistered when the next replaces it,
     as cred.c does. */
  for(int i = 0; i < 48; i++) {
    snprintf(tok, sizeof(tok), "eyJ0eXAi.token-%d.sig", i);
    assert_int_equal(log_secret_add(tok), 0);
    if(prev[0])
      assert_int_equal(log_secret_remove(prev), 0);
    memcpy(prev, tok, sizeof(tok));
    assert_true(log_secret_count() <= 2);
  }
  assert_non_null(strstr(logged(out, sizeof(out),
                                "Bearer eyJ0eXAi.token-47.sig and "
                                "config-client-secret"),
                         "Bearer *** and ***"));
  log_secret_clear();
  assert_int_equal(log_secret_count(), 0);
}

static void
test_secret_encoded_form_and_longest_first(void **state)
{
  char out[4096];

  (void)state;
  log_set_format(LOG_FORMAT_TEXT);
  /* A client secret as a form body or a query string carries it. */
  assert_int_equal(log_secret_add("p@ss/w0rd+Q=="), 0);
  assert_int_equal(log_secret_count(), 2);
  logged(out, sizeof(out), "client_secret=p%40ss%2Fw0rd%2BQ%3D%3D&scope=x");
  assert_null(strstr(out, "w0rd"));
  assert_non_null(strstr(out, "client_secret=***&scope=x"));
  /* A secret inside a longer one: the longer goes whole, whatever the
     order of registration. */
  assert_int_equal(log_secret_add("sig123456"), 0);
  assert_int_equal(log_secret_add("sv=2023&sig123456&se=2030"), 0);
  logged(out, sizeof(out), "q=sv=2023&sig123456&se=2030 end");
  assert_non_null(strstr(out, "q=*** end"));
  assert_int_equal(log_secret_remove("p@ss/w0rd+Q=="), 0);
  assert_non_null(strstr(logged(out, sizeof(out), "p%40ss%2Fw0rd"),
                         "p%40ss%2Fw0rd"));
  log_secret_clear();
}

static void
test_secret_table_is_bounded(void **state)
{
  char s[32];

  (void)state;
  for(int i = 0; i < 256; i++) {
    snprintf(s, sizeof(s), "secret-%04d", i);
    assert_int_equal(log_secret_add(s), 0);
  }
  assert_int_equal(log_secret_count(), 256);
  assert_int_equal(log_secret_add("one-too-many"), ERR_TOOBIG);
  /* Another reference to a registered one needs no room. */
  assert_int_equal(log_secret_add("secret-0007"), 0);
  /* A secret with an encoded form needs two places: all or nothing. */
  assert_int_equal(log_secret_remove("secret-0000"), 0);
  assert_int_equal(log_secret_add("needs/two"), ERR_TOOBIG);
  assert_int_equal(log_secret_count(), 255);
  log_secret_clear();
  assert_int_equal(log_secret_count(), 0);
  assert_int_equal(log_secret_add("needs/two"), 0);
  assert_int_equal(log_secret_count(), 2);
  log_secret_clear();
}

/* A long message whose cut falls inside a secret. */
static void
emit_long(void)
{
  char big[LONG_PAD + 64];

  memset(big, 'x', LONG_PAD);
  strcpy(big + LONG_PAD, "QWERTY-secret-tail-0123456789");
  log_warn("t", "%s", big);
}

static void
test_secret_cut_at_the_end_is_scrubbed(void **state)
{
  char out[LONG_PAD * 2], buf[128];

  (void)state;
  log_set_format(LOG_FORMAT_TEXT);
  assert_int_equal(log_secret_add("QWERTY-secret-tail-0123456789"), 0);
  /* The line is cut after the first bytes of the secret: they go too,
     and the cut is still marked. */
  capture(out, sizeof(out), emit_long);
  assert_null(strstr(out, "QWER"));
  assert_non_null(strstr(out, "xxx***...\n"));
  /* The same for a text some module cut before scrubbing it. */
  snprintf(buf, sizeof(buf), "error body: QWERTY-sec");
  log_scrub(buf, sizeof(buf));
  assert_string_equal(buf, "error body: ***");
  /* Fewer than 4 bytes are ordinary text. */
  snprintf(buf, sizeof(buf), "a QWE");
  log_scrub(buf, sizeof(buf));
  assert_string_equal(buf, "a QWE");
  log_secret_clear();
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_level_filter),
    cmocka_unit_test(test_secret_scrubbed_and_newlines_folded),
    cmocka_unit_test(test_json_format_is_valid_json),
    cmocka_unit_test(test_level_parse),
    cmocka_unit_test(test_secret_remove_stops_scrubbing),
    cmocka_unit_test(test_secret_registrations_are_counted),
    cmocka_unit_test(test_secret_rotation_keeps_the_list_small),
    cmocka_unit_test(test_secret_encoded_form_and_longest_first),
    cmocka_unit_test(test_secret_table_is_bounded),
    cmocka_unit_test(test_secret_cut_at_the_end_is_scrubbed),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
