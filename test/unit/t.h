/*
** t.h
** Checks for the C unit tests: each prints "ok" or "not ok" with its place,
** and t_done() prints the "N passed, M failed" line and gives the exit status.
*/

#ifndef t_h
#define t_h

#include <stdio.h>
#include <string.h>

static int t_passed, t_failed;

static int t_report (int good, const char *what, const char *file, int line) {
  if (good) t_passed++;
  else {
    t_failed++;
    printf("not ok %s:%d: %s\n", file, line, what);
  }
  return good;
}

#define T_OK(c)		t_report((c) ? 1 : 0, #c, __FILE__, __LINE__)
#define T_EQI(a,b)	t_report((long long)(a) == (long long)(b), #a " == " #b, \
			         __FILE__, __LINE__)
#define T_EQS(a,b)	t_report((a) != NULL && strcmp((a), (b)) == 0, \
			         #a " equals \"" b "\"", __FILE__, __LINE__)

static int t_done (void) {
  printf("%d passed, %d failed\n", t_passed, t_failed);
  return t_failed == 0 ? 0 : 1;
}

#endif
