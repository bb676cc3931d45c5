/*
** host.h
** What the benchmark hosts in bench/ share: a monotonic clock, the
** process's resident memory, and a VM's burst of work.
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

/*
** A VM's burst of work, as a server's VM handles a message (idle.c,
** cycle.c): small tables and strings made and dropped, a 100 KB string now
** and then, a 1 MB one twice.
*/
static const char host_burst[] =
  "local keep = {} "
  "for r = 1, 40 do "
  "  local t = {} "
  "  for i = 1, 1000 do t[i] = {i, 's' .. i .. ':' .. r} end "
  "  if r % 4 == 0 then keep[#keep + 1] = string.rep('m', 100000 + r) end "
  "  if r % 20 == 0 then keep.big = string.rep('b', 1 << 20) end "
  "end";

#endif
