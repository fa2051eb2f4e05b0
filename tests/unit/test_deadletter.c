/*
 * test_deadletter.c: the NDJSON lines, their permissions, and the count.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "deadletter.h"
#include "err.h"
#include "log.h"

static char root[64];

static int
setup(void **state)
{
  (void)state;
  strcpy(root, "/tmp/test_deadletter_XXXXXX");
  assert_non_null(mkdtemp(root));
  return 0;
}

static int
teardown(void **state)
{
  char cmd[128];

  (void)state;
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
  return system(cmd) == 0 ? 0 : -1;
}

/* The path of the only .ndjson file in dir. */
static void
only_file(const char *dir, char *path, size_t cap)
{
  DIR *dh = opendir(dir);
  struct dirent *de;
  int n = 0;

  assert_non_null(dh);
  while((de = readdir(dh)) != NULL) {
    if(strstr(de->d_name, ".ndjson")) {
      snprintf(path, cap, "%s/%s", dir, de->d_name);
      n++;
    }
  }
  closedir(dh);
  assert_int_equal(n, 1);
}

/* Reads line number idx (0-based) of the file as JSON. */
static json_t *
read_line(const char *path, int idx)
{
  FILE *f = fopen(path, "r");
  char *line = NULL;
  size_t cap = 0;
  json_t *j = NULL;

  assert_non_null(f);
  for(int i = 0; i <= idx; i++)
    assert_true(getline(&line, &cap, f) > 0);
  j = json_loads(line, 0, NULL);
  free(line);
  fclose(f);
  assert_non_null(j);
  return j;
}

static const char *
str(json_t *o, const char *k)
{
  return json_string_value(json_object_get(o, k));
}

static void
test_record_and_blob_lines(void **state)
{
  char dir[128], path[512];
  struct deadletter *d = NULL;
  struct deadletter_entry e = { 0 };
  struct stat st;
  json_t *j;
  const char *rec = "{\"TimeGenerated\":\"2026-11-30T00:07:03Z\","
                    "\"task_id\":\"poison-1\"}";

  (void)state;
  snprintf(dir, sizeof(dir), "%s/state/dead-letter", root);
  assert_int_equal(deadletter_open(dir, DEADLETTER_SYNC_EACH, &d), 0);
  assert_int_equal(stat(dir, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0700);

  e.blob = "in/2026/a.json";
  e.etag = "0x8DC0000000000";
  e.record_index = 7;
  e.reason = "rejected";
  e.http_status = 400;
  e.error_code = "InvalidRecord";
  e.error_message = "The record is invalid.";
  e.request_id = "5f1c2a8e-0000-4000-8000-000000000001";
  e.time = 1795997223;
  e.record = rec;
  e.record_len = strlen(rec);
  assert_int_equal(deadletter_write(d, &e), 0);

  memset(&e, 0, sizeof(e));
  e.blob = "in/bad.json";
  e.record_index = -1;
  e.reason = "bad_input";
  e.error_message = "invalid UTF-8 at line 3, column 9";
  assert_int_equal(deadletter_write(d, &e), 0);
  deadletter_destroy(d);

  only_file(dir, path, sizeof(path));
  assert_non_null(strstr(path, "/dead-letter-"));
  assert_int_equal(stat(path, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0600);

  j = read_line(path, 0);
  assert_string_equal(str(j, "kind"), "record");
  assert_string_equal(str(j, "time"), "2026-11-30T00:07:03Z");
  assert_string_equal(str(j, "blob"), "in/2026/a.json");
  assert_string_equal(str(j, "etag"), "0x8DC0000000000");
  assert_int_equal(json_integer_value(json_object_get(j, "record_index")), 7);
  assert_string_equal(str(j, "reason"), "rejected");
  assert_int_equal(json_integer_value(json_object_get(j, "http_status")), 400);
  assert_string_equal(str(j, "error_code"), "InvalidRecord");
  assert_string_equal(str(j, "error_message"), "The record is invalid.");
  assert_string_equal(str(j, "request_id"),
                      "5f1c2a8e-0000-4000-8000-000000000001");
  assert_string_equal(str(json_object_get(j, "record"), "task_id"),
                      "poison-1");
  json_decref(j);

  j = read_line(path, 1);
  assert_string_equal(str(j, "kind"), "blob");
  assert_null(json_object_get(j, "record_index"));
  assert_null(json_object_get(j, "etag"));
  assert_null(json_object_get(j, "http_status"));
  assert_string_equal(str(j, "reason"), "bad_input");
  json_decref(j);
}

static void
test_untrusted_text(void **state)
{
  char dir[128], path[512], msg[3000];
  struct deadletter *d = NULL;
  struct deadletter_entry e = { 0 };
  json_t *j;
  const char *m;

  (void)state;
  snprintf(dir, sizeof(dir), "%s/text", root);
  assert_int_equal(deadletter_open(dir, DEADLETTER_SYNC_DEFER, &d), 0);
  assert_int_equal(log_secret_add("tok-SECRET-123"), 0);
  e.blob = "b";
  e.reason = "rejected";
  e.record_index = 0;
  e.error_message = "bad \xff byte, token tok-SECRET-123 echoed";
  e.record = "not json \xc3";
  e.record_len = strlen(e.record);
  assert_int_equal(deadletter_write(d, &e), 0);
  memset(msg, 'm', sizeof(msg) - 1);
  msg[sizeof(msg) - 1] = '\0';
  e.error_message = msg;
  e.record = NULL;
  assert_int_equal(deadletter_write(d, &e), 0);
  assert_int_equal(deadletter_sync(d), 0);
  deadletter_destroy(d);
  log_secret_clear();

  only_file(dir, path, sizeof(path));
  j = read_line(path, 0);
  m = str(j, "error_message");
  assert_string_equal(m, "bad ? byte, token *** echoed");
  assert_string_equal(str(j, "record_text"), "not json ?");
  json_decref(j);
  j = read_line(path, 1);
  assert_int_equal(strlen(str(j, "error_message")), DEADLETTER_MAX_MESSAGE);
  json_decref(j);
}

static void
test_narrows_modes_and_validates(void **state)
{
  char dir[128], path[512];
  struct deadletter *d = NULL;
  struct deadletter_entry e = { 0 };
  struct stat st;
  time_t now = time(NULL);
  struct tm tm;
  int fd;

  (void)state;
  snprintf(dir, sizeof(dir), "%s/wide", root);
  assert_int_equal(mkdir(dir, 0755), 0);
  assert_int_equal(chmod(dir, 0755), 0);
  gmtime_r(&now, &tm);
  snprintf(path, sizeof(path), "%s/dead-letter-%04d%02d%02d.ndjson", dir,
           tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
  fd = open(path, O_CREAT | O_WRONLY, 0644);
  assert_true(fd >= 0);
  assert_int_equal(fchmod(fd, 0644), 0);
  close(fd);
  assert_int_equal(deadletter_open(dir, DEADLETTER_SYNC_EACH, &d), 0);
  assert_int_equal(stat(dir, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0700);
  e.reason = "x";
  assert_int_equal(deadletter_write(d, &e), ERR_INVAL);
  e.blob = "b";
  e.reason = NULL;
  assert_int_equal(deadletter_write(d, &e), ERR_INVAL);
  e.reason = "x";
  assert_int_equal(deadletter_write(d, &e), 0);
  assert_int_equal(stat(path, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0600);
  deadletter_destroy(d);
  deadletter_destroy(NULL);
  /* A file where the directory should be. */
  assert_int_equal(deadletter_open(path, DEADLETTER_SYNC_EACH, &d), ERR_IO);
  assert_int_equal(deadletter_open("", DEADLETTER_SYNC_EACH, &d), ERR_INVAL);
}

static void
test_count(void **state)
{
  char dir[128], path[512];
  struct deadletter *d = NULL;
  struct deadletter_entry e = { 0 };
  struct deadletter_counts c;
  FILE *f;

  (void)state;
  snprintf(dir, sizeof(dir), "%s/count", root);
  assert_int_equal(deadletter_count(dir, &c), 0);
  assert_int_equal(c.files + c.records + c.blobs + c.bad, 0);
  assert_int_equal(deadletter_open(dir, DEADLETTER_SYNC_EACH, &d), 0);
  e.blob = "b";
  e.reason = "rejected";
  for(int i = 0; i < 5; i++) {
    e.record_index = i;
    assert_int_equal(deadletter_write(d, &e), 0);
  }
  e.record_index = -1;
  e.reason = "bad_input";
  assert_int_equal(deadletter_write(d, &e), 0);
  deadletter_destroy(d);
  assert_int_equal(deadletter_count(dir, &c), 0);
  assert_int_equal(c.files, 1);
  assert_int_equal(c.records, 5);
  assert_int_equal(c.blobs, 1);
  assert_int_equal(c.bad, 0);
  /* Another day's file with a torn last line; other names are ignored. */
  snprintf(path, sizeof(path), "%s/dead-letter-20200101.ndjson", dir);
  f = fopen(path, "w");
  fputs("{\"kind\":\"record\",\"blob\":\"x\"}\n{\"kind\":\"rec", f);
  fclose(f);
  snprintf(path, sizeof(path), "%s/notes.txt", dir);
  f = fopen(path, "w");
  fputs("{\"kind\":\"record\"}\n", f);
  fclose(f);
  assert_int_equal(deadletter_count(dir, &c), 0);
  assert_int_equal(c.files, 2);
  assert_int_equal(c.records, 6);
  assert_int_equal(c.blobs, 1);
  assert_int_equal(c.bad, 1);
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_record_and_blob_lines),
    cmocka_unit_test(test_untrusted_text),
    cmocka_unit_test(test_narrows_modes_and_validates),
    cmocka_unit_test(test_count),
  };

  return cmocka_run_group_tests(tests, setup, teardown);
}
