/*
 * test_checkpoint.c: durability, corruption detection and bounded state of
 * the checkpoint (SPEC section 6).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "checkpoint.h"
#include "err.h"

struct fx {
  char dir[64];
  char snap[128];
  char journal[128];
};

static int
setup(void **state)
{
  struct fx *fx = calloc(1, sizeof(*fx));

  strcpy(fx->dir, "/tmp/ss-ck-XXXXXX");
  if(!mkdtemp(fx->dir))
    return -1;
  snprintf(fx->snap, sizeof(fx->snap), "%s/%s", fx->dir, CHECKPOINT_SNAPSHOT);
  snprintf(fx->journal, sizeof(fx->journal), "%s/%s", fx->dir,
           CHECKPOINT_JOURNAL);
  *state = fx;
  return 0;
}

static int
teardown(void **state)
{
  struct fx *fx = *state;
  char cmd[160];

  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fx->dir);
  if(system(cmd) != 0)
    return -1;
  free(fx);
  return 0;
}

static struct checkpoint *
open_ck(struct fx *fx, int64_t grace, int64_t start, uint64_t compact)
{
  struct checkpoint_opts o = { fx->dir, grace, start, compact, 0 };
  struct checkpoint *c = NULL;
  char err[512] = "";
  int rc = checkpoint_open(&o, &c, err, sizeof(err));

  if(rc)
    fprintf(stderr, "open: %s\n", err);
  assert_int_equal(rc, 0);
  return c;
}

static int
open_err(struct fx *fx, char *err, size_t errlen)
{
  struct checkpoint_opts o = { fx->dir, 3600, 0, 0, 0 };
  struct checkpoint *c = NULL;
  int rc = checkpoint_open(&o, &c, err, errlen);

  checkpoint_destroy(c);
  return rc;
}

static void
append_file(const char *path, const void *p, size_t n)
{
  int fd = open(path, O_WRONLY | O_APPEND);

  assert_true(fd >= 0);
  assert_int_equal(write(fd, p, n), (ssize_t)n);
  close(fd);
}

static off_t
file_size(const char *path)
{
  struct stat st;

  assert_int_equal(stat(path, &st), 0);
  return st.st_size;
}

static void
test_commit_survives_reopen(void **state)
{
  struct fx *fx = *state;
  struct checkpoint *c = open_ck(fx, 3600, 0, 0);
  struct checkpoint_stats st;

  assert_int_equal(checkpoint_lookup(c, "a.json", "0x1", 100),
                   CHECKPOINT_NEW);
  assert_int_equal(checkpoint_commit(c, "a.json", "0x1", 100, 7, NULL), 0);
  assert_int_equal(checkpoint_commit(c, "dir/b.json", "0x2", 101, 0,
                                     "invalid UTF-8 at line 1 column 9"), 0);
  assert_int_equal(checkpoint_sync(c), 0);
  checkpoint_destroy(c);

  c = open_ck(fx, 3600, 0, 0);
  assert_int_equal(checkpoint_lookup(c, "a.json", "0x1", 100),
                   CHECKPOINT_DONE);
  assert_int_equal(checkpoint_lookup(c, "dir/b.json", "0x2", 101),
                   CHECKPOINT_FAILED);
  /* A changed ETag is a new report. */
  assert_int_equal(checkpoint_lookup(c, "a.json", "0x9", 200),
                   CHECKPOINT_NEW);
  assert_int_equal(checkpoint_lookup(c, "c.json", "0x3", 100),
                   CHECKPOINT_NEW);
  checkpoint_get_stats(c, &st);
  assert_int_equal(st.done, 1);
  assert_int_equal(st.failed, 1);
  assert_int_equal(st.total_done, 1);
  assert_int_equal(st.total_failed, 1);
  checkpoint_destroy(c);
}

static int
find_reason(void *ud, const struct checkpoint_entry *e)
{
  const char **want = ud;

  if(!strcmp(e->name, want[0]) && !strcmp(e->reason, want[1]))
    return 1;
  return 0;
}

static void
test_awkward_names_round_trip(void **state)
{
  struct fx *fx = *state;
  const char *names[] = { "with space.json", "new\nline", "100%.json",
                          "\xc3\xa9t\xc3\xa9/\xe6\x97\xa5.json", "*star *",
                          "" };
  const char *want[2] = { "with space.json", "bad: \"x\" % y" };
  struct checkpoint *c = open_ck(fx, 3600, 0, 0);

  for(size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
    assert_int_equal(checkpoint_commit(c, names[i], "\"0x8D\" e", 5, i,
                                       NULL), 0);
  assert_int_equal(checkpoint_commit(c, "with space.json", "e2", 6, 0,
                                     "bad: \"x\" % y"), 0);
  assert_int_equal(checkpoint_sync(c), 0);
  checkpoint_destroy(c);
  c = open_ck(fx, 3600, 0, 0);
  for(size_t i = 1; i < sizeof(names) / sizeof(names[0]); i++)
    assert_int_equal(checkpoint_lookup(c, names[i], "\"0x8D\" e", 5),
                     CHECKPOINT_DONE);
  assert_int_equal(checkpoint_lookup(c, "with space.json", "e2", 6),
                   CHECKPOINT_FAILED);
  assert_int_equal(checkpoint_foreach(c, find_reason, want), 1);
  /* The same after a compaction into the snapshot. */
  assert_int_equal(checkpoint_compact(c), 0);
  checkpoint_destroy(c);
  c = open_ck(fx, 3600, 0, 0);
  assert_int_equal(checkpoint_lookup(c, "new\nline", "\"0x8D\" e", 5),
                   CHECKPOINT_DONE);
  assert_int_equal(checkpoint_foreach(c, find_reason, want), 1);
  checkpoint_destroy(c);
}

static void
test_torn_tail_is_cut_not_fatal(void **state)
{
  struct fx *fx = *state;
  struct checkpoint *c = open_ck(fx, 3600, 0, 0);
  off_t good;

  assert_int_equal(checkpoint_commit(c, "a", "e", 1, 1, NULL), 0);
  assert_int_equal(checkpoint_sync(c), 0);
  checkpoint_destroy(c);
  good = file_size(fx->journal);
  append_file(fx->journal, "D 2 e b 1 *1234", 15);

  c = open_ck(fx, 3600, 0, 0);
  assert_int_equal(file_size(fx->journal), good);
  assert_int_equal(checkpoint_lookup(c, "a", "e", 1), CHECKPOINT_DONE);
  assert_int_equal(checkpoint_lookup(c, "b", "e", 2), CHECKPOINT_NEW);
  assert_int_equal(checkpoint_commit(c, "b", "e", 2, 1, NULL), 0);
  assert_int_equal(checkpoint_sync(c), 0);
  checkpoint_destroy(c);

  /* Zeros left by a file system after a power loss are a torn tail too. */
  append_file(fx->journal, "\0\0\0\0\0\0\0\0", 8);
  c = open_ck(fx, 3600, 0, 0);
  assert_int_equal(checkpoint_lookup(c, "b", "e", 2), CHECKPOINT_DONE);
  checkpoint_destroy(c);
}

static void
test_corrupt_line_is_refused(void **state)
{
  struct fx *fx = *state;
  struct checkpoint *c = open_ck(fx, 3600, 0, 0);
  char err[512];
  int fd;

  assert_int_equal(checkpoint_commit(c, "a", "e", 1, 1, NULL), 0);
  assert_int_equal(checkpoint_commit(c, "b", "e", 1, 1, NULL), 0);
  assert_int_equal(checkpoint_commit(c, "c", "e", 1, 1, NULL), 0);
  assert_int_equal(checkpoint_sync(c), 0);
  checkpoint_destroy(c);
  /* Flip the name of the second line: "D 1 e b" -> "D 1 e x". */
  fd = open(fx->journal, O_RDWR);
  assert_true(fd >= 0);
  {
    char data[4096];
    ssize_t n = read(fd, data, sizeof(data));
    char *second = memchr(data, '\n', (size_t)n) + 1;

    assert_int_equal(second[6], 'b');
    assert_int_equal(pwrite(fd, "x", 1, (second - data) + 6), 1);
  }
  close(fd);
  assert_int_equal(open_err(fx, err, sizeof(err)), ERR_PARSE);
  assert_non_null(strstr(err, "checkpoint.journal:2: corrupt line"));
}

static void
test_truncated_snapshot_is_refused(void **state)
{
  struct fx *fx = *state;
  struct checkpoint *c = open_ck(fx, 3600, 0, 0);
  char err[512];

  for(int i = 0; i < 5; i++) {
    char name[16];

    snprintf(name, sizeof(name), "n%d", i);
    assert_int_equal(checkpoint_commit(c, name, "e", 1, 1, NULL), 0);
  }
  assert_int_equal(checkpoint_compact(c), 0);
  checkpoint_destroy(c);
  /* Cut the END line off. */
  assert_int_equal(truncate(fx->snap, file_size(fx->snap) - 20), 0);
  assert_int_equal(open_err(fx, err, sizeof(err)), ERR_PARSE);
  assert_non_null(strstr(err, "checkpoint.snap"));
  assert_non_null(strstr(err, "truncated"));

  /* An empty snapshot file is not an empty state either. */
  assert_int_equal(truncate(fx->snap, 0), 0);
  assert_int_equal(open_err(fx, err, sizeof(err)), ERR_PARSE);
  assert_non_null(strstr(err, "truncated"));

  /* Nor is a journal whose snapshot disappeared. */
  assert_int_equal(unlink(fx->snap), 0);
  append_file(fx->journal, "W 5 *00000000\n", 14);
  assert_int_equal(open_err(fx, err, sizeof(err)), ERR_PARSE);
  assert_non_null(strstr(err, "snapshot"));
  assert_non_null(strstr(err, "missing"));
}

static void
test_compaction_bounds_journal_and_is_idempotent(void **state)
{
  struct fx *fx = *state;
  struct checkpoint *c = open_ck(fx, 3600, 0, 10);
  struct checkpoint_stats st;
  char *saved = NULL;
  size_t saved_len;
  char name[32];
  FILE *f;

  for(int i = 0; i < 25; i++) {
    snprintf(name, sizeof(name), "blob-%02d", i);
    assert_int_equal(checkpoint_commit(c, name, "e", 10, 1, NULL), 0);
    assert_int_equal(checkpoint_sync(c), 0);
  }
  checkpoint_get_stats(c, &st);
  assert_true(st.journal_lines < 10);
  /* Keep the journal as it was before the next compaction, to simulate a
     crash after the snapshot rename but before the journal truncation. */
  f = fopen(fx->journal, "rb");
  assert_non_null(f);
  saved = calloc(1, 1 << 16);
  saved_len = fread(saved, 1, 1 << 16, f);
  fclose(f);
  assert_int_equal(checkpoint_compact(c), 0);
  checkpoint_destroy(c);
  append_file(fx->journal, saved, saved_len);
  free(saved);

  c = open_ck(fx, 3600, 0, 10);
  for(int i = 0; i < 25; i++) {
    snprintf(name, sizeof(name), "blob-%02d", i);
    assert_int_equal(checkpoint_lookup(c, name, "e", 10), CHECKPOINT_DONE);
  }
  checkpoint_get_stats(c, &st);
  assert_int_equal(st.done, 25);
  checkpoint_destroy(c);
}

static void
test_watermark_bounds_state(void **state)
{
  struct fx *fx = *state;
  struct checkpoint *c = open_ck(fx, 100, 0, 0);
  struct checkpoint_stats st;
  char name[32];

  for(int i = 0; i < 1000; i++) {
    snprintf(name, sizeof(name), "b%04d", i);
    assert_int_equal(checkpoint_commit(c, name, "e", 1000 + i, 1, NULL), 0);
  }
  assert_int_equal(checkpoint_advance(c, 1900), 0);
  /* The watermark never moves back. */
  assert_int_equal(checkpoint_advance(c, 1200), 0);
  assert_int_equal(checkpoint_sync(c), 0);
  checkpoint_get_stats(c, &st);
  assert_int_equal(st.watermark, 1900);
  assert_int_equal(st.done, 1000 - 800); /* lm >= 1800 kept */
  /* Old blobs are known done without an entry; recent unknown ones are new. */
  assert_int_equal(checkpoint_lookup(c, "never-seen", "e", 1500),
                   CHECKPOINT_OLD);
  assert_int_equal(checkpoint_lookup(c, "never-seen", "e", 1850),
                   CHECKPOINT_NEW);
  assert_int_equal(checkpoint_lookup(c, "b0950", "e", 1950), CHECKPOINT_DONE);
  checkpoint_destroy(c);

  c = open_ck(fx, 100, 0, 0);
  checkpoint_get_stats(c, &st);
  assert_int_equal(st.watermark, 1900);
  assert_int_equal(st.done, 200);
  assert_int_equal(st.total_done, 1000);
  checkpoint_destroy(c);
}

static void
test_floor_is_kept_from_first_start(void **state)
{
  struct fx *fx = *state;
  struct checkpoint *c = open_ck(fx, 3600, 5000, 0);

  assert_int_equal(checkpoint_lookup(c, "x", "e", 4999),
                   CHECKPOINT_BEFORE_START);
  assert_int_equal(checkpoint_lookup(c, "x", "e", 5000), CHECKPOINT_NEW);
  checkpoint_destroy(c);
  /* A later start with another start_from keeps the recorded floor. */
  c = open_ck(fx, 3600, 9000, 0);
  assert_int_equal(checkpoint_lookup(c, "x", "e", 6000), CHECKPOINT_NEW);
  assert_int_equal(checkpoint_lookup(c, "x", "e", 4000),
                   CHECKPOINT_BEFORE_START);
  checkpoint_destroy(c);
}

static void
test_pending_and_lock_and_readonly(void **state)
{
  struct fx *fx = *state;
  struct checkpoint *c = open_ck(fx, 3600, 0, 0), *ro = NULL;
  struct checkpoint_opts o = { fx->dir, 3600, 0, 0, 1 };
  struct checkpoint_stats st;
  char err[512];

  assert_int_equal(checkpoint_begin(c, "p1", "e", 10), 0);
  assert_int_equal(checkpoint_begin(c, "p2", "e", 10), 0);
  assert_int_equal(checkpoint_commit(c, "p2", "e", 10, 3, NULL), 0);
  assert_int_equal(checkpoint_sync(c), 0);
  /* A second writer is refused while the first holds the state. */
  assert_int_equal(open_err(fx, err, sizeof(err)), ERR_IO);
  assert_non_null(strstr(err, "locked"));
  /* A reader (the `state` command) is not. */
  assert_int_equal(checkpoint_open(&o, &ro, err, sizeof(err)), 0);
  checkpoint_get_stats(ro, &st);
  assert_int_equal(st.pending, 1);
  assert_int_equal(st.done, 1);
  assert_int_equal(checkpoint_commit(ro, "x", "e", 1, 1, NULL), ERR_INVAL);
  checkpoint_destroy(ro);
  /* Pending blobs survive a compaction. */
  assert_int_equal(checkpoint_compact(c), 0);
  checkpoint_destroy(c);
  c = open_ck(fx, 3600, 0, 0);
  checkpoint_get_stats(c, &st);
  assert_int_equal(st.pending, 1);
  assert_int_equal(checkpoint_lookup(c, "p1", "e", 10), CHECKPOINT_NEW);
  checkpoint_destroy(c);
}

/*
 * A child commits blobs as fast as it can and reports each one on a pipe
 * after checkpoint_sync returns; the parent kills it with SIGKILL at a
 * random moment. Every reported commit must be there after the restart,
 * and the state must always load.
 */
static void
test_kill9_never_loses_a_synced_commit(void **state)
{
  struct fx *fx = *state;
  unsigned seed = (unsigned)time(NULL);
  int next = 0;

  srand(seed);
  for(int round = 0; round < 12; round++) {
    int fds[2];
    pid_t pid;
    int reported = -1, v;

    assert_int_equal(pipe(fds), 0);
    pid = fork();
    assert_true(pid >= 0);
    if(pid == 0) {
      struct checkpoint_opts o = { fx->dir, 3600, 0, 50, 0 };
      struct checkpoint *c;
      char name[32];

      close(fds[0]);
      if(checkpoint_open(&o, &c, NULL, 0))
        _exit(3);
      for(int i = next;; i++) {
        snprintf(name, sizeof(name), "k%06d", i);
        if(checkpoint_begin(c, name, "e", 100) ||
           checkpoint_commit(c, name, "e", 100, 1, NULL) ||
           checkpoint_sync(c))
          _exit(4);
        if(write(fds[1], &i, sizeof(i)) != sizeof(i))
          _exit(5);
      }
    }
    close(fds[1]);
    usleep(2000 + (useconds_t)(rand() % 30000));
    kill(pid, SIGKILL);
    while(read(fds[0], &v, sizeof(v)) == sizeof(v))
      reported = v;
    close(fds[0]);
    assert_int_equal(waitpid(pid, NULL, 0), pid);

    struct checkpoint *c = open_ck(fx, 3600, 0, 50);
    for(int i = 0; i <= reported; i++) {
      char name[32];

      snprintf(name, sizeof(name), "k%06d", i);
      if(checkpoint_lookup(c, name, "e", 100) != CHECKPOINT_DONE)
        fail_msg("seed %u round %d: k%06d reported synced but lost", seed,
                 round, i);
    }
    checkpoint_destroy(c);
    if(reported >= next)
      next = reported + 1;
  }
  assert_true(next > 0);
}

/* Writes text to path as a file of checkpoint lines, each given its
   " *CRC"; a line "END n" gets the CRC of the lines before it too. */
static void
write_lines(const char *path, const char *const *lines, size_t n)
{
  char data[4096], line[512];
  size_t len = 0;
  FILE *f;

  for(size_t i = 0; i < n; i++) {
    int k;

    if(!strncmp(lines[i], "END ", 4))
      k = snprintf(line, sizeof(line), "%s %08lx", lines[i],
                   (unsigned long)crc32(0L, (const Bytef *)data,
                                        (uInt)len));
    else
      k = snprintf(line, sizeof(line), "%s", lines[i]);
    assert_true(k >= 0 && (size_t)k < sizeof(line));
    len += (size_t)snprintf(data + len, sizeof(data) - len, "%s *%08lx\n",
                            line, (unsigned long)crc32(0L,
                                                       (const Bytef *)line,
                                                       (uInt)k));
    assert_true(len < sizeof(data));
  }
  f = fopen(path, "w");
  assert_non_null(f);
  assert_int_equal(fwrite(data, 1, len, f), len);
  fclose(f);
}

/*
 * Found by fuzz_checkpoint: a line holding only a checksum (" *00000000",
 * the CRC of nothing) has no fields, and the loader read the type of a
 * line that has none (an uninitialised pointer for the first journal
 * line: valgrind reports it, and it could crash `state` or the daemon's
 * start). It is a corrupt line like any other.
 */
static void
test_line_of_only_a_checksum_is_refused(void **state)
{
  static const char *const snap[] = {
    "spectra-sentinel-checkpoint 1 0 0 0 0", "END 0"
  };
  struct fx *fx = *state;
  char err[512];

  write_lines(fx->snap, snap, 2);
  write_lines(fx->journal, (const char *const[]){ "" }, 1);
  assert_int_equal(open_err(fx, err, sizeof(err)), ERR_PARSE);
  assert_non_null(strstr(err, "checkpoint.journal:1: corrupt line"));
  /* The same in the snapshot, where the header came first. */
  write_lines(fx->snap, (const char *const[]){
    "spectra-sentinel-checkpoint 1 0 0 0 0", "", "END 0" }, 3);
  unlink(fx->journal);
  assert_int_equal(open_err(fx, err, sizeof(err)), ERR_PARSE);
  assert_non_null(strstr(err, "checkpoint.snap:2: corrupt line"));
}

/*
 * Found by fuzz_checkpoint: a watermark near INT64_MIN (checksummed, so
 * loaded) made W - grace overflow, undefined behaviour that UBSan stops
 * on. The window start saturates instead.
 */
static void
test_extreme_watermark_does_not_overflow(void **state)
{
  static const char *const snap[] = {
    ("spectra-sentinel-checkpoint 1 -9223372036854775808 "
     "-9223372036854775808 1 0"),
    "D -9223372036854775808 e a 1",
    "END 1"
  };
  struct fx *fx = *state;
  struct checkpoint *c;
  struct checkpoint_stats st;

  write_lines(fx->snap, snap, 3);
  c = open_ck(fx, 3600, 0, 0);
  checkpoint_get_stats(c, &st);
  assert_int_equal(st.done, 1);
  assert_int_equal(checkpoint_lookup(c, "a", "e", INT64_MIN),
                   CHECKPOINT_DONE);
  assert_int_equal(checkpoint_lookup(c, "b", "e", INT64_MIN),
                   CHECKPOINT_NEW);
  assert_int_equal(checkpoint_advance(c, INT64_MIN + 1), 0);
  checkpoint_destroy(c);
}

/*
 * Found by fuzz_checkpoint: a header with a negative total was loaded, the
 * total became a huge unsigned number, and the next compaction wrote a
 * snapshot that no load accepts: the daemon would refuse to start after
 * its own write. Such a header is refused at once.
 */
static void
test_negative_total_is_refused(void **state)
{
  static const char *const snap[] = {
    "spectra-sentinel-checkpoint 1 0 1795991615 -3 1", "END 0"
  };
  struct fx *fx = *state;
  char err[512];

  write_lines(fx->snap, snap, 2);
  assert_int_equal(open_err(fx, err, sizeof(err)), ERR_PARSE);
  assert_non_null(strstr(err, "checkpoint.snap:1: not a version 1"));
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(test_commit_survives_reopen, setup,
                                    teardown),
    cmocka_unit_test_setup_teardown(test_awkward_names_round_trip, setup,
                                    teardown),
    cmocka_unit_test_setup_teardown(test_torn_tail_is_cut_not_fatal, setup,
                                    teardown),
    cmocka_unit_test_setup_teardown(test_corrupt_line_is_refused, setup,
                                    teardown),
    cmocka_unit_test_setup_teardown(test_truncated_snapshot_is_refused,
                                    setup, teardown),
    cmocka_unit_test_setup_teardown(
      test_compaction_bounds_journal_and_is_idempotent, setup, teardown),
    cmocka_unit_test_setup_teardown(test_watermark_bounds_state, setup,
                                    teardown),
    cmocka_unit_test_setup_teardown(test_floor_is_kept_from_first_start,
                                    setup, teardown),
    cmocka_unit_test_setup_teardown(test_pending_and_lock_and_readonly,
                                    setup, teardown),
    cmocka_unit_test_setup_teardown(test_line_of_only_a_checksum_is_refused,
                                    setup, teardown),
    cmocka_unit_test_setup_teardown(test_extreme_watermark_does_not_overflow,
                                    setup, teardown),
    cmocka_unit_test_setup_teardown(test_negative_total_is_refused, setup,
                                    teardown),
    cmocka_unit_test_setup_teardown(test_kill9_never_loses_a_synced_commit,
                                    setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
