/*
** benchrun.c
** Runs one benchmark's variants (e.g. stock and shoal) alternately, several
** runs each, and reports medians and ratios against the first variant.
**
**   benchrun [-m] [-c CPU|last] -n NAME -r RUNS -o OUT.json
**            -v LABEL=COMMAND [-v ...]...
**
** Each COMMAND runs through /bin/sh. Per run it measures wall time (monotonic
** clock) and peak RSS (wait4), and collects any "METRIC name value unit"
** lines the program prints on stdout. Writes OUT.json and OUT with .md in
** place of .json (markdown rows for README.md), and prints a table. With
** -m, only the METRIC lines are reported (the command runs under a tool,
** valgrind say, that makes its time and RSS meaningless). With -c, every
** run is pinned to one CPU ('last': the highest this process may use), so
** that no run is moved between CPUs halfway (see 'run_once').
*/

#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAXVAR		8
#define MAXRUNS		100
#define MAXMETRIC	16

typedef struct Series {  /* one measured quantity of one variant */
  char name[48];
  char unit[16];
  double v[MAXRUNS];
  int n;
} Series;

typedef struct Variant {
  const char *label;
  const char *cmd;
  Series s[MAXMETRIC];  /* s[0] wall time, s[1] peak RSS, then METRIC lines */
  int ns;
} Variant;

#define USAGE	"usage: benchrun [-m] [-c CPU|last] -n NAME -r RUNS -o OUT.json " \
		"-v LABEL=COMMAND..."

static Variant vars[MAXVAR];
static int nvars;
static int first;  /* first series reported: 2 with -m (METRIC lines only) */
static int cpu = -1;  /* the CPU every run is pinned to (-c), or -1 */


static void die (const char *fmt, const char *a) {
  fprintf(stderr, "benchrun: ");
  fprintf(stderr, fmt, a);
  fputc('\n', stderr);
  exit(1);
}


/* v's series NAME, or NULL if v never printed it (a metric the baseline
   lacks has no ratio: shown as "-", null in the JSON) */
static Series *findseries (Variant *v, const char *name) {
  for (int i = 0; i < v->ns; i++)
    if (strcmp(v->s[i].name, name) == 0 && v->s[i].n > 0) return &v->s[i];
  return NULL;
}


static Series *series (Variant *v, const char *name, const char *unit) {
  for (int i = 0; i < v->ns; i++)
    if (strcmp(v->s[i].name, name) == 0) return &v->s[i];
  if (v->ns == MAXMETRIC) die("too many metrics (at %s)", name);
  Series *s = &v->s[v->ns++];
  snprintf(s->name, sizeof s->name, "%s", name);
  snprintf(s->unit, sizeof s->unit, "%s", unit);
  s->n = 0;
  return s;
}


static int cmpd (const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}


static double median (const Series *s) {
  double t[MAXRUNS];
  if (s->n == 0) return 0;
  memcpy(t, s->v, s->n * sizeof(double));
  qsort(t, s->n, sizeof(double), cmpd);
  return (s->n % 2) ? t[s->n / 2] : (t[s->n / 2 - 1] + t[s->n / 2]) / 2;
}


/*
** The median of the ratios run by run: s's run k against s0's run k, made
** in the same round (runs alternate), into '*p'. A machine that slows for
** a few rounds moves both alike and leaves those ratios, where it may
** move one median and not the other. 0: none (a run without the metric,
** or the baseline 0 in every run).
*/
static int paired (const Series *s, const Series *s0, int runs, double *p) {
  Series r;
  r.n = 0;
  if (s->n != runs || s0->n != runs) return 0;
  for (int k = 0; k < runs; k++)
    if (s0->v[k] != 0) r.v[r.n++] = s->v[k] / s0->v[k];
  if (r.n == 0) return 0;
  *p = median(&r);
  return 1;
}


/*
** The CPU that '-c ARG' names: a number, or 'last', the highest one in this
** process's affinity mask. Exits with a message if there is no such CPU.
*/
static int pickcpu (const char *arg) {
  cpu_set_t set;
  char *end;
  if (sched_getaffinity(0, sizeof set, &set) != 0)
    die("sched_getaffinity: %s", strerror(errno));
  if (strcmp(arg, "last") == 0) {
    for (int c = CPU_SETSIZE - 1; c >= 0; c--)
      if (CPU_ISSET(c, &set)) return c;
    die("%s", "no CPU in this process's affinity mask");
  }
  long c = strtol(arg, &end, 10);
  if (*arg == '\0' || *end != '\0' || c < 0 || c >= CPU_SETSIZE)
    die("-c: '%s' is not a CPU number or 'last'", arg);
  if (!CPU_ISSET(c, &set))
    die("-c: CPU %s is not one this process may run on", arg);
  return (int)c;
}


/* Run v's command once; the child's stdout is scanned for METRIC lines and
   echoed to stderr when the run fails. */
static void run_once (Variant *v, const char *name, int run, int runs) {
  int fd[2];
  struct timespec t0, t1;
  struct rusage ru;
  int status;
  char line[512], out[4096] = "";
  size_t outlen = 0;
  if (pipe(fd) != 0) die("pipe: %s", strerror(errno));
  clock_gettime(CLOCK_MONOTONIC, &t0);
  pid_t pid = fork();
  if (pid < 0) die("fork: %s", strerror(errno));
  if (pid == 0) {
    if (cpu >= 0) {  /* the command and all it starts, on that CPU only */
      cpu_set_t set;
      CPU_ZERO(&set);
      CPU_SET(cpu, &set);
      if (sched_setaffinity(0, sizeof set, &set) != 0) {
        fprintf(stderr, "benchrun: sched_setaffinity: %s\n", strerror(errno));
        _exit(127);
      }
    }
    dup2(fd[1], 1);
    close(fd[0]);
    close(fd[1]);
    execl("/bin/sh", "sh", "-c", v->cmd, (char *)NULL);
    _exit(127);
  }
  close(fd[1]);
  FILE *f = fdopen(fd[0], "r");
  while (fgets(line, sizeof line, f) != NULL) {
    char mname[48], unit[16] = "";
    double val;
    size_t l = strlen(line);
    if (outlen + l < sizeof out) {  /* keep the start of the output for errors */
      memcpy(out + outlen, line, l + 1);
      outlen += l;
    }
    if (sscanf(line, "METRIC %47s %lf %15s", mname, &val, unit) >= 2) {
      Series *s = series(v, mname, unit);
      if (s->n < MAXRUNS) s->v[s->n++] = val;
    }
  }
  fclose(f);
  if (wait4(pid, &status, 0, &ru) < 0) die("wait4: %s", strerror(errno));
  clock_gettime(CLOCK_MONOTONIC, &t1);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    fprintf(stderr, "benchrun: %s/%s failed (status %d): %s\n%s", name, v->label,
            WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status), v->cmd, out);
    exit(1);
  }
  double wall = (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
  Series *w = &v->s[0], *r = &v->s[1];
  w->v[w->n++] = wall;
  r->v[r->n++] = ru.ru_maxrss / 1024.0;
  fprintf(stderr, "  [%s] %-8s run %d/%d: %.3f s, %.1f MB\n", name, v->label,
          run, runs, wall, ru.ru_maxrss / 1024.0);
}


static void json_series (FILE *f, const Series *s, const char *indent) {
  fprintf(f, "%s\"%s\": {\"unit\": \"%s\", \"median\": %.6g, \"runs\": [", indent,
          s->name, s->unit, median(s));
  for (int i = 0; i < s->n; i++) fprintf(f, "%s%.6g", i ? ", " : "", s->v[i]);
  fprintf(f, "]}");
}


/* The JSON's object 'key': each variant's ratios to the baseline, of
   medians or ('bypair') paired by run; null where there is none. */
static void json_ratios (FILE *f, const char *key, int bypair, int runs) {
  fprintf(f, "  },\n  \"%s\": {\n", key);
  for (int i = 1; i < nvars; i++) {
    fprintf(f, "    \"%s/%s\": {", vars[i].label, vars[0].label);
    for (int j = first; j < vars[i].ns; j++) {
      Series *s = &vars[i].s[j], *base = findseries(&vars[0], s->name);
      double r = 0;
      int ok = 0;
      if (base != NULL && bypair) ok = paired(s, base, runs, &r);
      else if (base != NULL && median(base) != 0 && s->n > 0) {
        r = median(s) / median(base);
        ok = 1;
      }
      fprintf(f, "%s\"%s\": ", j > first ? ", " : "", s->name);
      if (ok) fprintf(f, "%.4f", r);
      else fprintf(f, "null");
    }
    fprintf(f, "}%s\n", i + 1 < nvars ? "," : "");
  }
}


static void write_json (const char *path, const char *name, int runs) {
  FILE *f = fopen(path, "w");
  char date[32];
  time_t now = time(NULL);
  struct utsname u;
  if (f == NULL) die("cannot write %s", path);
  strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
  uname(&u);
  fprintf(f, "{\n  \"name\": \"%s\",\n  \"date\": \"%s\",\n  \"nproc\": %ld,\n"
             "  \"machine\": \"%s %s\",\n  \"runs\": %d,\n", name, date,
          sysconf(_SC_NPROCESSORS_ONLN), u.sysname, u.machine, runs);
  if (cpu >= 0) fprintf(f, "  \"cpu\": %d,\n", cpu);
  else fprintf(f, "  \"cpu\": null,\n");
  fprintf(f, "  \"baseline\": \"%s\",\n  \"variants\": {\n", vars[0].label);
  for (int i = 0; i < nvars; i++) {
    Variant *v = &vars[i];
    fprintf(f, "    \"%s\": {\n      \"command\": \"", v->label);
    for (const char *c = v->cmd; *c; c++) {
      if (*c == '"' || *c == '\\') fputc('\\', f);
      fputc(*c, f);
    }
    fprintf(f, "\",\n");
    for (int j = first; j < v->ns; j++) {
      json_series(f, &v->s[j], "      ");
      fprintf(f, "%s\n", j + 1 < v->ns ? "," : "");
    }
    fprintf(f, "    }%s\n", i + 1 < nvars ? "," : "");
  }
  json_ratios(f, "ratios", 0, runs);
  json_ratios(f, "paired", 1, runs);
  fprintf(f, "  }\n}\n");
  fclose(f);
}


/* The table, on stdout and as markdown rows beside the JSON file. */
static void write_table (const char *mdpath, const char *name, int runs) {
  FILE *md = fopen(mdpath, "w");
  if (md == NULL) die("cannot write %s", mdpath);
  fprintf(md, "| %s | measure |", name);
  for (int i = 0; i < nvars; i++) fprintf(md, " %s |", vars[i].label);
  for (int i = 1; i < nvars; i++) fprintf(md, " %s/%s |", vars[i].label, vars[0].label);
  fprintf(md, "\n|---|---|");
  for (int i = 1; i < 2 * nvars; i++) fprintf(md, "---|");
  fprintf(md, "\n");
  printf("%s: median of %d runs", name, runs);
  if (cpu >= 0) printf(", each on CPU %d", cpu);
  printf("\n  %-22s", "");
  for (int i = 0; i < nvars; i++) printf(" %12s", vars[i].label);
  for (int i = 1; i < nvars; i++) printf("  %s/%s", vars[i].label, vars[0].label);
  printf("\n");
  for (int j = first; j < vars[0].ns; j++) {
    Series *s0 = &vars[0].s[j];
    char what[80];
    snprintf(what, sizeof what, "%s (%s)", s0->name, s0->unit);
    printf("  %-22s", what);
    fprintf(md, "| | %s |", what);
    for (int i = 0; i < nvars; i++) {
      Series *s = findseries(&vars[i], s0->name);
      if (s == NULL) { printf(" %12s", "-"); fprintf(md, " - |"); continue; }
      printf(" %12.4g", median(s));
      fprintf(md, " %.4g |", median(s));
    }
    for (int i = 1; i < nvars; i++) {
      Series *s = findseries(&vars[i], s0->name);
      int w = (int)(strlen(vars[i].label) + strlen(vars[0].label) + 1);
      if (s == NULL || median(s0) == 0) { printf("  %*s", w, "-"); fprintf(md, " - |"); continue; }
      printf("  %*.3f", w, median(s) / median(s0));
      fprintf(md, " %.3f |", median(s) / median(s0));
    }
    printf("\n");
    fprintf(md, "\n");
  }
  if (first == 0 && runs > 1) {  /* time's ratios run by run (see 'paired') */
    const char *what = "time, paired by run";
    printf("  %-22s", what);
    fprintf(md, "| | %s |", what);
    for (int i = 0; i < nvars; i++) {
      printf(" %12s", "");
      fprintf(md, " |");
    }
    for (int i = 1; i < nvars; i++) {
      double p;
      int w = (int)(strlen(vars[i].label) + strlen(vars[0].label) + 1);
      if (!paired(&vars[i].s[0], &vars[0].s[0], runs, &p)) {
        printf("  %*s", w, "-");
        fprintf(md, " - |");
        continue;
      }
      printf("  %*.3f", w, p);
      fprintf(md, " %.3f |", p);
    }
    printf("\n");
    fprintf(md, "\n");
  }
  fclose(md);
}


int main (int argc, char **argv) {
  const char *name = NULL, *out = NULL;
  int runs = 5, opt;
  while ((opt = getopt(argc, argv, "mc:n:r:o:v:")) != -1) {
    switch (opt) {
      case 'm': first = 2; break;
      case 'c': cpu = pickcpu(optarg); break;
      case 'n': name = optarg; break;
      case 'r': runs = atoi(optarg); break;
      case 'o': out = optarg; break;
      case 'v': {
        char *eq = strchr(optarg, '=');
        if (eq == NULL) die("variant '%s' is not LABEL=COMMAND", optarg);
        if (nvars == MAXVAR) die("too many variants (at %s)", optarg);
        *eq = '\0';
        vars[nvars].label = optarg;
        vars[nvars].cmd = eq + 1;
        series(&vars[nvars], "time", "s");
        series(&vars[nvars], "peak_rss", "MB");
        nvars++;
        break;
      }
      default:
        die("%s", USAGE);
    }
  }
  if (name == NULL || out == NULL || nvars == 0)
    die("%s", USAGE);
  if (runs < 1 || runs > MAXRUNS) die("%s", "runs (-r) must be 1 to 100");
  size_t olen = strlen(out);
  if (olen < 6 || strcmp(out + olen - 5, ".json") != 0) die("output '%s' must end in .json", out);
  /* alternate variants so that drift on a shared machine hits all alike */
  for (int r = 1; r <= runs; r++)
    for (int i = 0; i < nvars; i++) run_once(&vars[i], name, r, runs);
  for (int i = 0; i < nvars && first > 0; i++)
    if (vars[i].ns <= first) die("-m: '%s' printed no METRIC line", vars[i].cmd);
  write_json(out, name, runs);
  char md[1024];
  snprintf(md, sizeof md, "%.*s.md", (int)(olen - 5), out);
  write_table(md, name, runs);
  return 0;
}
