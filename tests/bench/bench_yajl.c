/*
 * bench_yajl.c: the "just validate the JSON" ceiling of the benchmark.
 *
 * The transform must at least read every byte of a report and check its
 * grammar and UTF-8 (SPEC section 2 rejects invalid input). yajl with no
 * callbacks does exactly that and nothing more: it lexes, validates strings
 * and tracks nesting, but builds nothing and decodes nothing. Its throughput
 * is therefore a practical upper bound for any correct transform, and the
 * benchmark's yajl/transform ratio says how close the transform gets.
 *
 * Usage: bench_yajl -l MANIFEST | FILE...
 * Prints one line of measurements, timed around the loop only:
 *   tool=yajl files=N bytes=N records=0 out_bytes=0 wall=S user=S sys=S
 * Exit status: 0 success, 1 a file could not be read or is not valid JSON,
 * 2 usage.
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
#include <yajl/yajl_parse.h>

#include "buf.h"
#include "err.h"

/* The largest report or manifest read into memory; SPEC's max_blob_bytes. */
#define MAX_INPUT ((size_t)512 * 1024 * 1024)

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

/*
 * Splits the manifest held in m into paths, in place. Stores a new array of
 * pointers into m (the caller frees the array, not the strings) in *out.
 */
static int
split_lines(struct buf *m, char ***out, size_t *n)
{
  char **v, *p, *end, *nl;
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

/*
 * Validates the len bytes at data as JSON. Several top-level values are
 * allowed, as SPEC accepts NDJSON blobs and the corpus stream is one. path
 * is only used in the message. Returns 0 or ERR_PARSE/ERR_NOMEM.
 */
static int
validate(const char *path, const unsigned char *data, size_t len)
{
  yajl_handle h;
  yajl_status st;
  unsigned char *msg;
  int rc = 0;

  /* NULL callbacks: yajl checks each callback pointer before calling it,
     so it lexes and validates without building or decoding anything. */
  h = yajl_alloc(NULL, NULL, NULL);
  if(!h)
    return ERR_NOMEM;
  yajl_config(h, yajl_allow_multiple_values, 1);
  st = yajl_parse(h, data, len);
  if(st == yajl_status_ok)
    st = yajl_complete_parse(h);
  if(st != yajl_status_ok) {
    msg = yajl_get_error(h, 0, data, len);
    /* yajl ends its message with a newline; the line here has its own. */
    fprintf(stderr, "bench_yajl: %s: %.*s (offset %zu)\n", path,
            msg ? (int)strcspn((const char *)msg, "\n") : 12,
            msg ? (const char *)msg : "invalid JSON",
            yajl_get_bytes_consumed(h));
    yajl_free_error(h, msg);
    rc = ERR_PARSE;
  }
  yajl_free(h);
  return rc;
}

static int
usage(void)
{
  fputs("usage: bench_yajl -l MANIFEST | FILE...\n", stderr);
  return 2;
}

int
main(int argc, char **argv)
{
  struct buf manifest, data;
  struct rusage r0, r1;
  char **paths = NULL;
  const char *list = NULL;
  size_t npaths = 0, i;
  uint64_t bytes = 0;
  double t0, t1;
  int opt, status = 1;

  buf_init(&manifest, MAX_INPUT);
  buf_init(&data, MAX_INPUT);
  while((opt = getopt(argc, argv, "l:")) != -1) {
    if(opt != 'l')
      return usage();
    list = optarg;
  }
  if(list) {
    if(optind != argc)
      return usage();
    if(read_file(list, &manifest)) {
      fprintf(stderr, "bench_yajl: cannot read %s\n", list);
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
    buf_reset(&data);
    if(read_file(paths[i], &data)) {
      fprintf(stderr, "bench_yajl: cannot read %s\n", paths[i]);
      goto out;
    }
    bytes += data.len;
    if(validate(paths[i], (const unsigned char *)data.data, data.len))
      goto out;
  }
  t1 = mono_now();
  getrusage(RUSAGE_SELF, &r1);
  printf("tool=yajl files=%zu bytes=%" PRIu64 " records=0 out_bytes=0"
         " wall=%.6f user=%.6f sys=%.6f\n", npaths, bytes, t1 - t0,
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
