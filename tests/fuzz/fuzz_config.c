/*
 * fuzz_config.c: arbitrary bytes into config_load_string.
 *
 * Besides memory errors and leaks (ASan/UBSan/LSan), it checks the
 * module's contract: a failure gives no config and a newline-terminated
 * message list; a success prints as YAML that, unless it holds a redacted
 * secret, loads again and prints the same (the round trip config_print
 * promises).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "err.h"
#include "log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* config_print into a malloc'ed string; NULL when printing fails. */
static char *
print(const struct config *c, size_t *len)
{
  char *text = NULL;
  FILE *f = open_memstream(&text, len);

  if(!f)
    abort();
  if(config_print(c, f))
    abort();
  fclose(f);
  return text;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  static int once;
  struct config *c = NULL, *again = NULL;
  char *errors = NULL, *text, *text2;
  size_t len, len2;
  int rc;

  if(!once) {
    /* Warnings about plain http or readable files are expected here. */
    log_set_level(LOG_ERROR);
    unsetenv("CREDENTIALS_DIRECTORY");
    once = 1;
  }
  rc = config_load_string((const char *)data, size, "fuzz.yaml", &c, &errors);
  if(rc) {
    if(c)
      abort();
    if(rc != ERR_NOMEM && (!errors || !*errors ||
                           errors[strlen(errors) - 1] != '\n'))
      abort();
    free(errors);
    return 0;
  }
  if(!c || errors)
    abort();
  text = print(c, &len);
  if(!strstr(text, CONFIG_REDACTED)) {
    rc = config_load_string(text, len, "printed.yaml", &again, &errors);
    if(rc) {
      fprintf(stderr, "printed config does not load:\n%s\n%s", text,
              errors ? errors : "");
      abort();
    }
    text2 = print(again, &len2);
    if(len != len2 || memcmp(text, text2, len))
      abort();
    free(text2);
    config_destroy(again);
  }
  free(text);
  config_destroy(c);
  return 0;
}
