/*
 * main.c: the spectra-sentinel command line (SPEC section 8).
 */
#include <stdio.h>
#include <string.h>

static void
usage(FILE *f)
{
  fputs("usage: spectra-sentinel run       [-c FILE]\n"
        "       spectra-sentinel check     [-c FILE] [--online]\n"
        "       spectra-sentinel transform [--blob-name NAME] FILE|-\n"
        "       spectra-sentinel state     [-c FILE]\n"
        "       spectra-sentinel --version | --help\n", f);
}

int
main(int argc, char **argv)
{
  if(argc >= 2 && !strcmp(argv[1], "--version")) {
    printf("spectra-sentinel %s\n", SS_VERSION);
    return 0;
  }
  if(argc >= 2 && !strcmp(argv[1], "--help")) {
    usage(stdout);
    return 0;
  }
  usage(stderr);
  return 2;
}
