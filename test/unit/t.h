/*
** t.h
** Checks for the C unit tests: each prints "ok" or "not ok" with its place,
** and t_done() prints the "N passed, M failed" line and gives the exit status.
*/

#ifndef t_h
#define t_h

#include <stdio.h>
#include <stdlib.h>
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

/*
** A lua_Alloc that counts the bytes in use in 't_allocated', so a test can
** check that lua_close frees everything.
*/
static size_t t_allocated;

static inline void *t_alloc (void *ud, void *ptr, size_t osize, size_t nsize) {
  (void)ud;
  if (ptr != NULL) t_allocated -= osize;
  if (nsize == 0) {
    free(ptr);
    return NULL;
  }
  ptr = realloc(ptr, nsize);
  if (ptr != NULL) t_allocated += nsize;
  else if (osize > 0) t_allocated += osize;  /* failed resize keeps the block */
  return ptr;
}


/* Write 'text' to the file 'path'; a test cannot go on without it. */
static inline void t_writefile (const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  if (f == NULL || fputs(text, f) < 0 || fclose(f) != 0) {
    perror(path);
    exit(1);
  }
}


static int t_done (void) {
  printf("%d passed, %d failed\n", t_passed, t_failed);
  return t_failed == 0 ? 0 : 1;
}

#endif
