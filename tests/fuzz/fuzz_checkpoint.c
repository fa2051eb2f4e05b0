/*
 * fuzz_checkpoint.c: the checkpoint loader (and the dead-letter counter of
 * `spectra-sentinel state`) on arbitrary state files.
 *
 * Input layout: one flag byte, then the snapshot, a 0xff byte, then the
 * journal (no 0xff: the whole rest is the snapshot and there is no journal
 * file). Real state files never hold a raw 0xff (the writer escapes every
 * byte outside 0x21..0x7e), so the split loses nothing representative.
 * Flags:
 *   bit 0  give every line a correct " *CRC32" (replacing one that is
 *          there), so that mutations reach the parser behind the checksum;
 *   bit 1  give the snapshot's "END COUNT FILECRC" line the right FILECRC;
 *   bit 2  no snapshot file at all;
 *   bit 3  a journal file even when the input has no 0xff (empty).
 *
 * Oracles, besides ASan/UBSan/LSan:
 *   - a read-only open that succeeds is matched by a read-write open that
 *     succeeds with the same counts (the `state` command and the daemon
 *     must agree on what a state directory holds); a failed load has a
 *     message;
 *   - after a read-write open, a commit, a watermark move and a
 *     compaction, the state loads again read-only with the same counts:
 *     what the writer writes, the loader reads;
 *   - deadletter_count on the same bytes counts every line exactly once.
 * The files live in a directory under /dev/shm (or $TMPDIR), so the
 * fsyncs of a compaction cost nothing.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "buf.h"
#include "checkpoint.h"
#include "deadletter.h"
#include "err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[256];
static char snap_path[300], journal_path[300], dl_dir[300], dl_path[300];

static void
remove_dir(void)
{
  char p[400];

  unlink(snap_path);
  unlink(journal_path);
  snprintf(p, sizeof(p), "%s.tmp", snap_path);
  unlink(p);
  unlink(dl_path);
  rmdir(dl_dir);
  rmdir(dir);
}

static void
setup(void)
{
  const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm"
                     : getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";

  snprintf(dir, sizeof(dir), "%s/fuzz_checkpoint.XXXXXX", base);
  if(!mkdtemp(dir))
    abort();
  snprintf(snap_path, sizeof(snap_path), "%s/%s", dir, CHECKPOINT_SNAPSHOT);
  snprintf(journal_path, sizeof(journal_path), "%s/%s", dir,
           CHECKPOINT_JOURNAL);
  snprintf(dl_dir, sizeof(dl_dir), "%s/dead-letter", dir);
  snprintf(dl_path, sizeof(dl_path), "%s/dead-letter-20261130.ndjson",
           dl_dir);
  if(mkdir(dl_dir, 0700))
    abort();
  atexit(remove_dir);
}

static void
put_file(const char *path, const void *p, size_t n)
{
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

  if(fd < 0)
    abort();
  if(n && write(fd, p, n) != (ssize_t)n)
    abort();
  close(fd);
}

/*
 * Copies in[0..n) to out line by line, giving each complete line a correct
 * trailing " *CRC" (an existing one is replaced) and, when fix_end, the END
 * line the CRC of everything before it. A last line without a newline is
 * copied as it is (a torn write).
 */
static void
fix_lines(const uint8_t *in, size_t n, int fix_end, struct buf *out)
{
  size_t pos = 0;

  while(pos < n) {
    const uint8_t *nl = memchr(in + pos, '\n', n - pos);
    size_t len, start = out->len;
    const uint8_t *star;

    if(!nl) {
      buf_append(out, in + pos, n - pos);
      break;
    }
    len = (size_t)(nl - (in + pos));
    /* Drop an existing " *XXXXXXXX" so that it is not doubled. */
    if(len >= 10 && in[pos + len - 10] == ' ' && in[pos + len - 9] == '*')
      len -= 10;
    star = in + pos;
    if(fix_end && len >= 4 && !memcmp(star, "END ", 4)) {
      /* "END " COUNT " " FILECRC: keep COUNT, recompute FILECRC. */
      const uint8_t *sp = memchr(star + 4, ' ', len - 4);
      size_t keep = sp ? (size_t)(sp - star) : len;
      uLong crc = crc32(0L, (const Bytef *)out->data, (uInt)out->len);

      buf_append(out, star, keep);
      buf_printf(out, " %08lx", (unsigned long)crc);
    }
    else
      buf_append(out, star, len);
    buf_printf(out, " *%08lx\n",
               (unsigned long)crc32(0L, (const Bytef *)out->data + start,
                                    (uInt)(out->len - start)));
    pos = (size_t)(nl - in) + 1;
  }
}

static void
write_state(const uint8_t *p, size_t n, const char *path, int flags,
            int is_snap)
{
  struct buf b;

  if(!(flags & 1)) {
    put_file(path, p, n);
    return;
  }
  buf_init(&b, 4 * n + 4096);
  fix_lines(p, n, is_snap && (flags & 2), &b);
  put_file(path, b.data ? b.data : "", b.len);
  buf_free(&b);
}

static int
check_entry(void *ud, const struct checkpoint_entry *e)
{
  const struct checkpoint *c = ud;

  if(!e->name || !e->etag || !e->reason)
    abort();
  if(e->state != CHECKPOINT_NEW && e->state != CHECKPOINT_DONE &&
     e->state != CHECKPOINT_FAILED)
    abort();
  if(e->state == CHECKPOINT_FAILED && e->records)
    abort();
  /* A finished entry is known as finished for its ETag, unless it lies
     before the floor (which wins). */
  if(e->state != CHECKPOINT_NEW) {
    enum checkpoint_state st = checkpoint_lookup(c, e->name, e->etag,
                                                 e->last_modified);

    if(st != e->state && st != CHECKPOINT_BEFORE_START)
      abort();
  }
  return 0;
}

static void
same_stats(const struct checkpoint_stats *a, const struct checkpoint_stats *b,
           int journal_too)
{
  if(a->done != b->done || a->failed != b->failed ||
     a->pending != b->pending || a->total_done != b->total_done ||
     a->total_failed != b->total_failed || a->watermark != b->watermark ||
     a->floor != b->floor)
    abort();
  if(journal_too && a->journal_lines != b->journal_lines)
    abort();
}

static void
count_deadletter(const uint8_t *data, size_t size)
{
  struct deadletter_counts dc;
  uint64_t lines = 0;

  put_file(dl_path, data, size);
  if(deadletter_count(dl_dir, &dc))
    abort();
  for(size_t i = 0; i < size; i++)
    lines += data[i] == '\n';
  if(size && data[size - 1] != '\n')
    lines++;
  if(dc.files != 1 || dc.records + dc.blobs + dc.bad != lines)
    abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  struct checkpoint_opts o;
  struct checkpoint *c = NULL;
  struct checkpoint_stats ro, rw, again;
  const uint8_t *sep;
  char err[512];
  int flags, rc_ro, rc;

  if(!dir[0])
    setup();
  if(size < 1)
    return 0;
  flags = data[0];
  data++;
  size--;

  unlink(snap_path);
  unlink(journal_path);
  sep = memchr(data, 0xff, size);
  if(!(flags & 4))
    write_state(data, sep ? (size_t)(sep - data) : size, snap_path, flags, 1);
  if(sep)
    write_state(sep + 1, size - (size_t)(sep + 1 - data), journal_path,
                flags, 0);
  else if(flags & 8)
    put_file(journal_path, "", 0);

  memset(&o, 0, sizeof(o));
  o.dir = dir;
  o.grace = 3600;
  o.start_from = 0;
  o.compact_lines = 4;

  /* Read-only, as `spectra-sentinel state` does. */
  o.readonly = 1;
  err[0] = '\0';
  rc_ro = checkpoint_open(&o, &c, err, sizeof(err));
  if(rc_ro) {
    if(c || !err[0] || memchr(err, '\0', sizeof(err)) == NULL)
      abort();
  }
  else {
    checkpoint_get_stats(c, &ro);
    if(checkpoint_foreach(c, check_entry, c))
      abort();
    if(checkpoint_begin(c, "x", "y", 1) != ERR_INVAL ||
       checkpoint_commit(c, "x", "y", 1, 0, NULL) != ERR_INVAL ||
       checkpoint_advance(c, 1) != ERR_INVAL)
      abort();
    checkpoint_destroy(c);
    c = NULL;
  }

  /* Read-write, as the daemon does. */
  o.readonly = 0;
  err[0] = '\0';
  rc = checkpoint_open(&o, &c, err, sizeof(err));
  if(rc_ro == 0 && rc != 0) {
    fprintf(stderr, "read-only load succeeded, read-write failed: %s\n",
            err);
    abort();
  }
  if(rc) {
    if(c || !err[0])
      abort();
    /* A state the daemon refuses is one `state` refuses too (or finds
       missing). */
    if(rc_ro == 0)
      abort();
    goto deadletter;
  }
  checkpoint_get_stats(c, &rw);
  if(rc_ro == 0)
    same_stats(&ro, &rw, 1);
  if(checkpoint_foreach(c, check_entry, c))
    abort();

  /* Write through every kind of line, then read back what was written. */
  rc = checkpoint_begin(c, "fuzz/new blob.json", "0x8D1", rw.watermark);
  if(!rc)
    rc = checkpoint_commit(c, "fuzz/new blob.json", "0x8D1", rw.watermark,
                           3, NULL);
  if(!rc)
    rc = checkpoint_commit(c, "fuzz/bad\nname", "", rw.watermark, 0,
                           "not JSON at line 1");
  if(!rc && rw.watermark < INT64_MAX)
    rc = checkpoint_advance(c, rw.watermark + 1);
  if(!rc)
    rc = checkpoint_sync(c);
  if(!rc)
    rc = checkpoint_compact(c);
  if(rc) {
    fprintf(stderr, "writing to a loaded state failed: %s\n", err_str(rc));
    abort();
  }
  checkpoint_get_stats(c, &rw);
  checkpoint_destroy(c);
  c = NULL;

  o.readonly = 1;
  err[0] = '\0';
  rc = checkpoint_open(&o, &c, err, sizeof(err));
  if(rc) {
    fprintf(stderr, "a state written by the daemon does not load: %s\n",
            err);
    abort();
  }
  checkpoint_get_stats(c, &again);
  same_stats(&rw, &again, 0);
  if(checkpoint_foreach(c, check_entry, c))
    abort();
  checkpoint_destroy(c);

deadletter:
  count_deadletter(data, size);
  return 0;
}
