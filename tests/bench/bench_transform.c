/*
 * bench_transform.c: the in-process transform driver of the benchmark.
 *
 * tests/bench/run.sh runs this program over the report corpus to measure
 * the transform (transform.h) without the daemon around it: no network, no
 * batching, no output, just bytes in and records counted. What is timed is
 * what a worker thread does for a downloaded blob: read the report and turn
 * it into records. Process start-up and the manifest are outside the timed
 * loop.
 *
 * Usage:
 *   bench_transform [-m buffer|file] -l MANIFEST | FILE...
 *       transforms every file and prints one line of measurements:
 *       tool=transform-MODE files=N bytes=N records=N out_bytes=N
 *       wall=S user=S sys=S
 *       -m buffer (the default) reads each file into memory and calls
 *       transform_buffer, as the daemon does with a downloaded blob;
 *       -m file calls transform_file, which streams from the file.
 *   bench_transform -d FILE
 *       prints the records of one report as NDJSON (the check of the
 *       records against the Python baseline uses this).
 *
 * Exit status: 0 success, 1 a file could not be read or transformed, 2
 * usage. A report the transform rejects is a failure here: the corpus holds
 * only valid reports.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
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
#include "transform.h"

/* The largest report or manifest read into memory; SPEC's max_blob_bytes. */
#define MAX_INPUT ((size_t)512 * 1024 * 1024)

struct counts {
  uint64_t records;
  uint64_t out_bytes;
  FILE *dump;       /* borrowed; NULL unless records are printed */
};

static double
mono_now(void)
{
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double
tv_sec(struct timeval tv)
{
  return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

/*
 * Appends the whole file at path to b (which keeps its cap). path is
 * borrowed. Returns 0, ERR_IO or ERR_TOOBIG/ERR_NOMEM from the buffer.
 */
static int
read_file(const char *path, struct buf *b)
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

/* Counts (and with -d prints) one record. rec is borrowed. */
static int
on_record(void *ud, const struct transform_record *rec)
{
  struct counts *c = ud;

  c->records++;
  c->out_bytes += rec->len;
  if(c->dump) {
    if(fwrite(rec->json, 1, rec->len, c->dump) != rec->len ||
       putc('\n', c->dump) == EOF)
      return ERR_IO;
  }
  return 0;
}

/*
 * Says why path failed. The transform fills err for bad input and may for
 * other failures (a size cap, say); err is borrowed and may be empty.
 */
static void
report_error(const char *path, int rc, const struct transform_error *err)
{
  if(err->text[0])
    fprintf(stderr, "bench_transform: %s: %s: %s at line %" PRIu64
            ", column %" PRIu64 " (offset %" PRIu64 ")\n", path,
            err_str(rc), err->text, err->line, err->column, err->offset);
  else
    fprintf(stderr, "bench_transform: %s: %s\n", path, err_str(rc));
}

/*
 * Splits the manifest held in m into paths, in place: every line becomes a
 * NUL-terminated string. Stores a new array of pointers into m (the caller
 * frees the array, not the strings) in *out and its length in *n.
 */
static int
split_lines(struct buf *m, char ***out, size_t *n)
{
  char **v = NULL, *p, *end, *nl;
  size_t count = 0, i = 0;

  for(p = m->data, end = m->data + m->len; p < end; p++)
    count += *p == '\n';
  v = calloc(count + 1, sizeof(*v));
  if(!v)
    return ERR_NOMEM;
  for(p = m->data; p < end; p = nl + 1) {
    nl = memchr(p, '\n', (size_t)(end - p));
    if(!nl)
      nl = end;
    *nl = '\0';
    if(nl > p)
      v[i++] = p;
  }
  *out = v;
  *n = i;
  return 0;
}

static int
usage(void)
{
  fputs("usage: bench_transform [-m buffer|file] -l MANIFEST | FILE...\n"
        "       bench_transform -d FILE\n", stderr);
  return 2;
}

int
main(int argc, char **argv)
{
  struct transform_opts opts;
  struct transform_error terr;
  struct counts c;
  struct buf manifest, data;
  struct rusage r0, r1;
  char **paths = NULL;
  const char *list = NULL, *dump = NULL, *mode = "buffer";
  size_t npaths = 0, i;
  uint64_t bytes = 0;
  double t0, t1;
  int opt, use_file, rc, status = 1;

  buf_init(&manifest, MAX_INPUT);
  buf_init(&data, MAX_INPUT);
  while((opt = getopt(argc, argv, "m:l:d:")) != -1) {
    switch(opt) {
    case 'm': mode = optarg; break;
    case 'l': list = optarg; break;
    case 'd': dump = optarg; break;
    default: return usage();
    }
  }
  if(strcmp(mode, "buffer") && strcmp(mode, "file"))
    return usage();
  use_file = !strcmp(mode, "file");
  memset(&opts, 0, sizeof(opts));
  opts.last_modified = -1;
  opts.now = (int64_t)time(NULL);
  memset(&c, 0, sizeof(c));
  memset(&terr, 0, sizeof(terr));

  if(dump) {
    if(optind != argc || list)
      return usage();
    c.dump = stdout;
    rc = transform_file(dump, &opts, on_record, &c, NULL, &terr);
    if(rc || fflush(stdout)) {
      report_error(dump, rc ? rc : ERR_IO, &terr);
      return 1;
    }
    return 0;
  }

  if(list) {
    if(optind != argc)
      return usage();
    if(read_file(list, &manifest)) {
      fprintf(stderr, "bench_transform: cannot read %s\n", list);
      goto out;
    }
    if(split_lines(&manifest, &paths, &npaths))
      goto out;
  }
  else {
    if(optind == argc)
      return usage();
    paths = argv + optind;
    npaths = (size_t)(argc - optind);
  }

  getrusage(RUSAGE_SELF, &r0);
  t0 = mono_now();
  for(i = 0; i < npaths; i++) {
    struct stat sb;

    /* The input size is counted here, not taken from the transform's
       stats, so that every tool of the benchmark divides by the same
       number of bytes. */
    if(use_file) {
      rc = stat(paths[i], &sb) ? ERR_IO : 0;
      if(!rc) {
        bytes += (uint64_t)sb.st_size;
        rc = transform_file(paths[i], &opts, on_record, &c, NULL, &terr);
      }
    }
    else {
      buf_reset(&data);
      rc = read_file(paths[i], &data);
      bytes += data.len;
      if(!rc)
        rc = transform_buffer(data.data, data.len, &opts, on_record, &c,
                              NULL, &terr);
    }
    if(rc) {
      report_error(paths[i], rc, &terr);
      goto out;
    }
  }
  t1 = mono_now();
  getrusage(RUSAGE_SELF, &r1);
  printf("tool=transform-%s files=%zu bytes=%" PRIu64 " records=%" PRIu64
         " out_bytes=%" PRIu64 " wall=%.6f user=%.6f sys=%.6f\n", mode,
         npaths, bytes, c.records, c.out_bytes, t1 - t0,
         tv_sec(r1.ru_utime) - tv_sec(r0.ru_utime),
         tv_sec(r1.ru_stime) - tv_sec(r0.ru_stime));
  status = 0;
out:
  if(list)
    free(paths);
  buf_free(&manifest);
  buf_free(&data);
  return status;
}
