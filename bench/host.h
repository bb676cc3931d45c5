/*
** host.h
** What the benchmark hosts in bench/ share: a monotonic clock and the
** process's resident memory.
*/

#ifndef host_h
#define host_h

#include <stdio.h>
#include <time.h>
#include <unistd.h>


/* Seconds on a monotonic clock. */
static inline double host_now (void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}


/* The process's RSS in KB (0: unknown). */
static inline double host_rsskb (void) {
  long pages = 0, resident = 0;
  FILE *f = fopen("/proc/self/statm", "r");
  if (f == NULL) return 0;
  if (fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
  fclose(f);
  return resident * (sysconf(_SC_PAGESIZE) / 1024.0);
}

#endif
