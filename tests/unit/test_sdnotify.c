/*
 * test_sdnotify.c: datagrams reach a NOTIFY_SOCKET; no socket is a no-op.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "err.h"
#include "sdnotify.h"

static void
test_sends_to_socket(void **state)
{
  struct sockaddr_un sa = { .sun_family = AF_UNIX };
  char path[64], got[128];
  ssize_t n;
  int fd;

  (void)state;
  snprintf(path, sizeof(path), "/tmp/ss-notify-%d", (int)getpid());
  strcpy(sa.sun_path, path);
  unlink(path);
  fd = socket(AF_UNIX, SOCK_DGRAM, 0);
  assert_true(fd >= 0);
  assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
  setenv("NOTIFY_SOCKET", path, 1);
  assert_int_equal(sdnotify_send("READY=1\nSTATUS=polling"), 0);
  n = recv(fd, got, sizeof(got) - 1, 0);
  assert_true(n > 0);
  got[n] = '\0';
  assert_string_equal(got, "READY=1\nSTATUS=polling");
  close(fd);
  unlink(path);
  /* A socket nobody listens on is an error the caller can log. */
  assert_int_equal(sdnotify_send("WATCHDOG=1"), ERR_IO);
  setenv("NOTIFY_SOCKET", "relative/path", 1);
  assert_int_equal(sdnotify_send("READY=1"), ERR_INVAL);
  unsetenv("NOTIFY_SOCKET");
  assert_int_equal(sdnotify_send("READY=1"), 0);
}

static void
test_watchdog_env(void **state)
{
  uint64_t us;
  char pid[32];

  (void)state;
  unsetenv("WATCHDOG_PID");
  setenv("WATCHDOG_USEC", "30000000", 1);
  sdnotify_watchdog_usec(&us);
  assert_int_equal(us, 30000000);
  snprintf(pid, sizeof(pid), "%d", (int)getpid() + 1);
  setenv("WATCHDOG_PID", pid, 1);
  sdnotify_watchdog_usec(&us);
  assert_int_equal(us, 0);
  snprintf(pid, sizeof(pid), "%d", (int)getpid());
  setenv("WATCHDOG_PID", pid, 1);
  sdnotify_watchdog_usec(&us);
  assert_int_equal(us, 30000000);
  setenv("WATCHDOG_USEC", "abc", 1);
  sdnotify_watchdog_usec(&us);
  assert_int_equal(us, 0);
  unsetenv("WATCHDOG_USEC");
  unsetenv("WATCHDOG_PID");
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_sends_to_socket),
    cmocka_unit_test(test_watchdog_env),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
