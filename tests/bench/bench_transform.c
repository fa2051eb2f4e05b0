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
 *       -m buffer (the default) reads each file into memory with
 *       TRANSFORM_PAD zero bytes after it and transforms it in place
 *       (source_open_padded), as the daemon does with a downloaded blob;
 *       -m file calls transform_file, which streams from the file through
 *       the scanner's window.
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
#include "bench_common.h"
#include "source.h"
#include "transform.h"

struct counts {
  uint64_t records;
  uint64_t out_bytes;
  FILE *dump;       /* borrowed; NULL unless records are printed */
};

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

static int
usage(void)
{
  fputs("usage: bench_transform [-m buffer|file] -l MANIFEST | FILE...\n"
        "       bench_transform -d FILE\n", stderr);
  return 2;
}

/*
 * Transforms the report in data (borrowed) in place, as the daemon does:
 * TRANSFORM_PAD zero bytes after it, then source_open_padded.
 */
static int
transform_padded(struct buf *data, const struct transform_opts *opts,
                 struct counts *c, struct transform_error *terr)
{
  struct source *s = NULL;
  int rc;

  if((rc = buf_reserve(data, TRANSFORM_PAD)) != 0)
    return rc;
  memset(data->data + data->len, 0, TRANSFORM_PAD);
  memset(terr, 0, sizeof(*terr));
  if((rc = source_open_padded(data->data, data->len, 0, &s)) != 0)
    return rc;
  rc = transform_run(source_transform(s), opts, on_record, c, NULL, terr);
  source_destroy(s);
  return rc;
}

int
main(int argc, char **argv)
{
  struct transform_opts opts;
  struct transform_error terr;
  struct counts c;
  struct buf data;
  struct bench_inputs in;
  struct bench_clock clk;
  const char *list = NULL, *dump = NULL, *mode = "buffer";
  char tool[32];
  size_t i;
  uint64_t bytes = 0;
  int opt, use_file, rc, status = 1;

  buf_init(&data, BENCH_MAX_INPUT);
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

  rc = bench_inputs_load(&in, "bench_transform", list, argc, argv, optind);
  if(rc == 2) {
    bench_inputs_free(&in);
    return usage();
  }
  if(rc)
    goto out;

  bench_clock_start(&clk);
  for(i = 0; i < in.n; i++) {
    struct stat sb;

    /* The input size is counted here, not taken from the transform's
       stats, so that every tool of the benchmark divides by the same
       number of bytes. */
    if(use_file) {
      rc = stat(in.paths[i], &sb) ? ERR_IO : 0;
      if(!rc) {
        bytes += (uint64_t)sb.st_size;
        rc = transform_file(in.paths[i], &opts, on_record, &c, NULL, &terr);
      }
    }
    else {
      buf_reset(&data);
      rc = bench_read_file(in.paths[i], &data);
      bytes += data.len;
      if(!rc)
        rc = transform_padded(&data, &opts, &c, &terr);
    }
    if(rc) {
      report_error(in.paths[i], rc, &terr);
      goto out;
    }
  }
  snprintf(tool, sizeof(tool), "transform-%s", mode);
  bench_clock_report(&clk, tool, in.n, bytes, c.records, c.out_bytes);
  status = 0;
out:
  bench_inputs_free(&in);
  buf_free(&data);
  return status;
}
