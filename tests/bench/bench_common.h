/*
 * bench_common.h: what the benchmark's in-process drivers (bench_transform,
 * bench_jansson, bench_yajl) share, so that they read their inputs and time
 * their loops the same way and their figures compare:
 *   - the input list: `-l MANIFEST` (one path a line) or paths as arguments;
 *   - whole-file reads into a capped buffer;
 *   - the measurement line, timed around the loop only (monotonic wall
 *     clock plus this process's getrusage):
 *       tool=T files=N bytes=N records=N out_bytes=N wall=S user=S sys=S
 * A header of static functions, since each driver is one compilation unit
 * built by tests/bench/run.sh.
 */
#ifndef SS_BENCH_COMMON_H
#define SS_BENCH_COMMON_H

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "err.h"

/* The largest report or manifest read into memory; SPEC's max_blob_bytes. */
#define BENCH_MAX_INPUT ((size_t)512 * 1024 * 1024)

/*
 * Appends the whole file at path to b (which keeps its cap). path is
 * borrowed. Returns 0, ERR_IO or ERR_TOOBIG/ERR_NOMEM from the buffer.
 */
static int
bench_read_file(const char *path, struct buf *b)
{
  struct stat st;
  ssize_t n;
  int fd, rc = 0;

  fd = open(path, O_RDONLY | O_CLOEXEC);
  if(fd < 0)
    return ERR_IO;
  if(fstat(fd, &st) == 0 && st.st_size > 0) {
    rc = buf_reserve(b, (size_t)st.st_size);
    if(rc)
      goto out;
  }
  for(;;) {
    rc = buf_reserve(b, 65536);
    if(rc)
      goto out;
    n = read(fd, b->data + b->len, b->cap - b->len - 1);
    if(n < 0 && errno == EINTR)
      continue;
    if(n < 0) {
      rc = ERR_IO;
      goto out;
    }
    if(n == 0)
      break;
    b->len += (size_t)n;
  }
  b->data[b->len] = '\0';
out:
  close(fd);
  return rc;
}

/* The files a driver runs over. */
struct bench_inputs {
  struct buf manifest;  /* the manifest's text; paths point into it */
  char **paths;         /* owned array when from a manifest, else argv */
  size_t n;
  int owned;
};

/*
 * Fills in from `-l list` (list non-NULL: no other arguments allowed) or
 * from argv[optind..argc). tool names the driver in messages. Returns 0,
 * 1 (the manifest cannot be read; said on stderr) or 2 (usage). Release
 * with bench_inputs_free in every case.
 */
static int
bench_inputs_load(struct bench_inputs *in, const char *tool,
                  const char *list, int argc, char **argv, int optind_)
{
  char *p, *end, *nl;
  size_t count = 0;

  memset(in, 0, sizeof(*in));
  buf_init(&in->manifest, BENCH_MAX_INPUT);
  if(!list) {
    if(optind_ == argc)
      return 2;
    in->paths = argv + optind_;
    in->n = (size_t)(argc - optind_);
    return 0;
  }
  if(optind_ != argc)
    return 2;
  if(bench_read_file(list, &in->manifest)) {
    fprintf(stderr, "%s: cannot read %s\n", tool, list);
    return 1;
  }
  end = in->manifest.data + in->manifest.len;
  for(p = in->manifest.data; p < end; p++)
    count += *p == '\n';
  in->paths = calloc(count + 1, sizeof(*in->paths));
  if(!in->paths)
    return 1;
  in->owned = 1;
  for(p = in->manifest.data; p < end; p = nl + 1) {
    nl = memchr(p, '\n', (size_t)(end - p));
    if(!nl)
      nl = end;
    *nl = '\0';
    if(nl > p)
      in->paths[in->n++] = p;
  }
  return 0;
}

static void
bench_inputs_free(struct bench_inputs *in)
{
  if(in->owned)
    free(in->paths);
  buf_free(&in->manifest);
}

/* A measurement started by bench_clock_start. */
struct bench_clock {
  struct rusage r0;
  struct timespec t0;
};

static void
bench_clock_start(struct bench_clock *c)
{
  getrusage(RUSAGE_SELF, &c->r0);
  clock_gettime(CLOCK_MONOTONIC, &c->t0);
}

static double
bench_tv(struct timeval tv)
{
  return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

/* Ends the measurement and prints the driver's one line (see the top). */
static void
bench_clock_report(const struct bench_clock *c, const char *tool,
                   size_t files, uint64_t bytes, uint64_t records,
                   uint64_t out_bytes)
{
  struct timespec t1;
  struct rusage r1;

  clock_gettime(CLOCK_MONOTONIC, &t1);
  getrusage(RUSAGE_SELF, &r1);
  printf("tool=%s files=%zu bytes=%" PRIu64 " records=%" PRIu64
         " out_bytes=%" PRIu64 " wall=%.6f user=%.6f sys=%.6f\n", tool,
         files, bytes, records, out_bytes,
         (double)(t1.tv_sec - c->t0.tv_sec) +
           (double)(t1.tv_nsec - c->t0.tv_nsec) / 1e9,
         bench_tv(r1.ru_utime) - bench_tv(c->r0.ru_utime),
         bench_tv(r1.ru_stime) - bench_tv(c->r0.ru_stime));
}

#endif
