/*
 * bench_jansson.c: the "parse a tree and dump it" reference of the benchmark.
 *
 * The obvious C implementation of the transform would json_loadb the report
 * into a jansson tree and json_dumpb the record columns back out. This
 * driver measures the floor of that design: json_loadb of each whole report
 * plus json_dumpb of the whole tree (compact), with nothing else. If the
 * streaming transform is not clearly faster than this, its complexity is not
 * paying for itself.
 *
 * Usage: bench_jansson -l MANIFEST | FILE...
 * Prints one line of measurements, timed around the loop only:
 *   tool=jansson files=N bytes=N records=0 out_bytes=N wall=S user=S sys=S
 * out_bytes is the size of the dumped JSON. Exit status: 0 success, 1 a file
 * could not be read or parsed, 2 usage.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
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
 * Dumps root compactly into out, growing it when the attempt does not fit
 * (json_dumpb returns the size it needs, and would have to dump again).
 * out starts with room for hint bytes so that a second dump is rare. root
 * is borrowed. Stores the dumped size in *len.
 */
static int
dump_tree(json_t *root, struct buf *out, size_t hint, size_t *len)
{
  size_t need;
  int rc;

  if(out->cap < hint + 1) {
    buf_reset(out);
    rc = buf_reserve(out, hint);
    if(rc)
      return rc;
  }
  for(;;) {
    need = json_dumpb(root, out->data, out->cap ? out->cap - 1 : 0,
                      JSON_COMPACT);
    if(need == 0)
      return ERR_NOMEM;
    if(out->cap && need <= out->cap - 1)
      break;
    buf_reset(out);
    rc = buf_reserve(out, need);
    if(rc)
      return rc;
  }
  *len = need;
  return 0;
}

static int
usage(void)
{
  fputs("usage: bench_jansson -l MANIFEST | FILE...\n", stderr);
  return 2;
}

int
main(int argc, char **argv)
{
  struct buf manifest, data, out;
  struct rusage r0, r1;
  char **paths = NULL;
  const char *list = NULL;
  size_t npaths = 0, i, dumped;
  uint64_t bytes = 0, out_bytes = 0;
  double t0, t1;
  int opt, status = 1;

  buf_init(&manifest, MAX_INPUT);
  buf_init(&data, MAX_INPUT);
  buf_init(&out, 4 * MAX_INPUT);
  while((opt = getopt(argc, argv, "l:")) != -1) {
    if(opt != 'l')
      return usage();
    list = optarg;
  }
  if(list) {
    if(optind != argc)
      return usage();
    if(read_file(list, &manifest)) {
      fprintf(stderr, "bench_jansson: cannot read %s\n", list);
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
    json_error_t jerr;
    json_t *root;
    int rc;

    buf_reset(&data);
    if(read_file(paths[i], &data)) {
      fprintf(stderr, "bench_jansson: cannot read %s\n", paths[i]);
      goto out;
    }
    bytes += data.len;
    root = json_loadb(data.data, data.len, 0, &jerr);
    if(!root) {
      fprintf(stderr, "bench_jansson: %s: %s at line %d, column %d\n",
              paths[i], jerr.text, jerr.line, jerr.column);
      goto out;
    }
    rc = dump_tree(root, &out, data.len + data.len / 4, &dumped);
    json_decref(root);
    if(rc) {
      fprintf(stderr, "bench_jansson: %s: dump: %s\n", paths[i],
              err_str(rc));
      goto out;
    }
    out_bytes += dumped;
  }
  t1 = mono_now();
  getrusage(RUSAGE_SELF, &r1);
  printf("tool=jansson files=%zu bytes=%" PRIu64 " records=0 out_bytes=%"
         PRIu64 " wall=%.6f user=%.6f sys=%.6f\n", npaths, bytes, out_bytes,
         t1 - t0, tv_sec(r1.ru_utime) - tv_sec(r0.ru_utime),
         tv_sec(r1.ru_stime) - tv_sec(r0.ru_stime));
  status = 0;
out:
  if(list)
    free(paths);
  buf_free(&manifest);
  buf_free(&data);
  buf_free(&out);
  return status;
}
