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

#include "log.h"

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

int
main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_level_filter),
    cmocka_unit_test(test_secret_scrubbed_and_newlines_folded),
    cmocka_unit_test(test_json_format_is_valid_json),
    cmocka_unit_test(test_level_parse),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
