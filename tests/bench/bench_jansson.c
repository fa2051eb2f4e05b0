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
#include "bench_common.h"

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
  struct buf data, out;
  struct bench_inputs in;
  struct bench_clock clk;
  const char *list = NULL;
  size_t i, dumped;
  uint64_t bytes = 0, out_bytes = 0;
  int opt, rc, status = 1;

  buf_init(&data, BENCH_MAX_INPUT);
  buf_init(&out, 4 * BENCH_MAX_INPUT);
  while((opt = getopt(argc, argv, "l:")) != -1) {
    if(opt != 'l')
      return usage();
    list = optarg;
  }
  rc = bench_inputs_load(&in, "bench_jansson", list, argc, argv, optind);
  if(rc == 2) {
    bench_inputs_free(&in);
    return usage();
  }
  if(rc)
    goto out;

  bench_clock_start(&clk);
  for(i = 0; i < in.n; i++) {
    json_error_t jerr;
    json_t *root;

    buf_reset(&data);
    if(bench_read_file(in.paths[i], &data)) {
      fprintf(stderr, "bench_jansson: cannot read %s\n", in.paths[i]);
      goto out;
    }
    bytes += data.len;
    root = json_loadb(data.data, data.len, 0, &jerr);
    if(!root) {
      fprintf(stderr, "bench_jansson: %s: %s at line %d, column %d\n",
              in.paths[i], jerr.text, jerr.line, jerr.column);
      goto out;
    }
    rc = dump_tree(root, &out, data.len + data.len / 4, &dumped);
    json_decref(root);
    if(rc) {
      fprintf(stderr, "bench_jansson: %s: dump: %s\n", in.paths[i],
              err_str(rc));
      goto out;
    }
    out_bytes += dumped;
  }
  bench_clock_report(&clk, "jansson", in.n, bytes, 0, out_bytes);
  status = 0;
out:
  bench_inputs_free(&in);
  buf_free(&data);
  buf_free(&out);
  return status;
}
