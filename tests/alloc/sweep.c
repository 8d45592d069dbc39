/* sweep.c - the driver of the allocation-failure sweeps (see sweep.h). */
#include "sweep.h"

#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "failmalloc.h"

int sweep_failed_line;

int sweep_text_add(sweep_text *t, const char *s, size_t n) {
    if (t->len + n + 1 > t->cap) {
        size_t cap = t->cap ? t->cap : 4096;
        while (cap < t->len + n + 1)
            cap *= 2;
        char *b = realloc(t->buf, cap);
        if (!b)
            return -1;
        t->buf = b;
        t->cap = cap;
    }
    memcpy(t->buf + t->len, s, n);
    t->len += n;
    t->buf[t->len] = '\0';
    return 0;
}

/* Exit codes of a child; a sanitizer report exits 1 (its kind is read from the child's log). */
enum { CHILD_HIT = 0, CHILD_NOT_REACHED = 10, CHILD_WRONG = 11, CHILD_SETUP = 12 };

static int cmp_lines(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The scrape's lines, sorted (family and series order follow the registry's hash seeds). */
static char *canonical(const char *s) {
    size_t n = 1;
    for (const char *p = s; *p; p++)
        n += *p == '\n';
    char *copy = strdup(s);
    char **lines = calloc(n, sizeof *lines);
    if (!copy || !lines) {
        free(copy);
        free(lines);
        return NULL;
    }
    size_t k = 0;
    for (char *save = NULL, *l = strtok_r(copy, "\n", &save); l; l = strtok_r(NULL, "\n", &save))
        lines[k++] = l;
    qsort(lines, k, sizeof *lines, cmp_lines);
    sweep_text t = {0};
    for (size_t i = 0; i < k; i++)
        if (sweep_text_add(&t, lines[i], strlen(lines[i])) < 0 || sweep_text_add(&t, "\n", 1) < 0)
            break;
    free(lines);
    free(copy);
    return t.buf ? t.buf : strdup("");
}

static char *reference_path;
static sweep_scenario scenario;
static int compare_output;

/* In a child: run the scenario once with the chosen allocation failing. */
static int run_one(void) {
    sweep_text out = {0};
    failmalloc_arm();
    int rc = scenario(&out);
    failmalloc_disarm();
    unsigned long count = failmalloc_count();
    int hit = failmalloc_hit();
    const char *n = getenv("ABACUS_FAIL_ALLOC");
    printf("sweep: N=%s allocations=%lu hit=%d scenario=%s", n ? n : "0", count, hit,
           rc == 0 ? "ok" : "error");
    if (rc != 0)
        printf(" (at line %d of the scenario)", sweep_failed_line);
    printf("\n");
    int code = hit ? CHILD_HIT : CHILD_NOT_REACHED;
    char *mine = rc == 0 ? canonical(out.buf ? out.buf : "") : NULL;
    if (rc == 0 && !mine)
        code = CHILD_SETUP;
    if (!compare_output) {
        /* output not compared */
    } else if (mine && reference_path && (!n || !strcmp(n, "0"))) { /* the counting run */
        FILE *f = fopen(reference_path, "w");
        if (!f || fputs(mine, f) < 0 || fclose(f) != 0)
            code = CHILD_SETUP;
    } else if (mine && reference_path) {
        FILE *f = fopen(reference_path, "r");
        sweep_text ref = {0};
        char buf[4096];
        size_t k;
        while (f && (k = fread(buf, 1, sizeof buf, f)) > 0)
            if (sweep_text_add(&ref, buf, k) < 0)
                break;
        if (f)
            fclose(f);
        if (!ref.buf || strcmp(ref.buf, mine) != 0) {
            printf("sweep: the scenario succeeded but its scrape differs from the reference\n"
                   "---- got (sorted)\n%s---- want (sorted)\n%s----\n",
                   mine, ref.buf ? ref.buf : "(none)");
            code = CHILD_WRONG;
        }
        free(ref.buf);
    }
    free(mine);
    free(out.buf);
    fflush(stdout);
    return code;
}

typedef struct {
    pid_t pid;
    unsigned long n;
    char log[64];
} child;

static child spawn(unsigned long n, const char *dir) {
    child c = {.pid = -1, .n = n};
    snprintf(c.log, sizeof c.log, "%s/%lu.log", dir, n);
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(c.log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd < 0)
            _exit(CHILD_SETUP);
        dup2(fd, 1);
        dup2(fd, 2);
        close(fd);
        char v[32];
        snprintf(v, sizeof v, "%lu", n);
        setenv("ABACUS_FAIL_ALLOC", v, 1);
        alarm(120);      /* a run that hangs (a lock kept on an error path) dies of SIGALRM */
        exit(run_one()); /* exit, not _exit: LeakSanitizer checks at exit */
    }
    c.pid = pid;
    return c;
}

static void show_log(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    char line[1024];
    int k = 0;
    while (fgets(line, sizeof line, f) && k++ < 200)
        fputs(line, stdout);
    fclose(f);
}

/* 1 when the file holds the string. */
static int log_has(const char *path, const char *needle) {
    FILE *f = fopen(path, "r");
    char line[1024];
    int found = 0;
    while (f && !found && fgets(line, sizeof line, f))
        found = strstr(line, needle) != NULL;
    if (f)
        fclose(f);
    return found;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

/* The child's verdict: NULL when it ended cleanly. */
static const char *verdict(int status, const char *log, int *reached) {
    *reached = 1;
    if (log_has(log, "ERROR: LeakSanitizer"))
        return "leak (LeakSanitizer)";
    if (log_has(log, "ERROR: AddressSanitizer"))
        return "AddressSanitizer report";
    if (log_has(log, "runtime error:"))
        return "UndefinedBehaviorSanitizer report";
    if (WIFSIGNALED(status))
        return WTERMSIG(status) == SIGALRM ? "hang (still running after 120 s)"
                                           : strsignal(WTERMSIG(status));
    switch (WEXITSTATUS(status)) {
    case CHILD_HIT:
        return NULL;
    case CHILD_NOT_REACHED:
        *reached = 0;
        return NULL;
    case CHILD_WRONG:
        return "wrong scrape after a swallowed failure";
    case CHILD_SETUP:
        return "sweep could not record its result";
    default:
        return "failure exit (a sanitizer report?)";
    }
}

int sweep_main(int argc, char **argv, sweep_scenario fn, int compare) {
    scenario = fn;
    compare_output = compare;
    if (argc > 1 && !strcmp(argv[1], "--one"))
        return run_one();
    if (argc > 1 && !strcmp(argv[1], "--print")) { /* the scrape the scenario ends with */
        sweep_text out = {0};
        int rc = scenario(&out);
        fputs(out.buf ? out.buf : "", stdout);
        free(out.buf);
        return rc == 0 ? 0 : 1;
    }
    unsigned long first = argc > 1 ? strtoul(argv[1], NULL, 10) : 1;
    unsigned long last = argc > 2 ? strtoul(argv[2], NULL, 10) : 0;
    if (first == 0)
        first = 1;
    long jobs = getenv("ABACUS_SWEEP_JOBS") ? atol(getenv("ABACUS_SWEEP_JOBS"))
                                            : sysconf(_SC_NPROCESSORS_ONLN);
    if (jobs < 1)
        jobs = 1;
    if (jobs > 64)
        jobs = 64;
    char dir[] = "/tmp/abacus-sweep-XXXXXX";
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 2;
    }
    setenv("ABACUS_SWEEP_DIR", dir, 1); /* scenarios keep their files in it */
    char ref[64];
    snprintf(ref, sizeof ref, "%s/reference", dir);
    reference_path = ref;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);

    /* The counting run: nothing fails; it writes the reference scrape. */
    child c = spawn(0, dir);
    int status;
    int reached;
    if (c.pid < 0 || waitpid(c.pid, &status, 0) < 0 || !WIFEXITED(status) ||
        WEXITSTATUS(status) != CHILD_NOT_REACHED) {
        printf("sweep: the run without failures did not end cleanly:\n");
        show_log(c.log);
        return 1;
    }
    unsigned long total = 0;
    FILE *lf = fopen(c.log, "r");
    char line[1024];
    int counted = 0;
    while (lf && !counted && fgets(line, sizeof line, lf)) /* after whatever the scenario logs */
        counted = sscanf(line, "sweep: N=0 allocations=%lu", &total) == 1;
    if (lf)
        fclose(lf);
    if (!counted) {
        printf("sweep: no allocation count from the counting run:\n");
        show_log(c.log);
        return 1;
    }
    unlink(c.log);
    printf("sweep: the scenario makes %lu allocations; failing each of N = %lu..%s (%ld at once)\n",
           total, first, last ? "LAST" : "end", jobs);
    fflush(stdout);

    child *run = calloc((size_t)jobs, sizeof *run);
    if (!run)
        return 2;
    unsigned long next = first, done = 0, bad = 0, end = 0; /* end: first N not reached */
    long active = 0;
    for (;;) {
        while (active < jobs && (end == 0 || next < end) && (last == 0 || next <= last) &&
               next <= total + 64) {
            child k = spawn(next++, dir);
            if (k.pid < 0) {
                perror("fork");
                return 2;
            }
            for (long i = 0; i < jobs; i++)
                if (run[i].pid <= 0) {
                    run[i] = k;
                    break;
                }
            active++;
        }
        if (active == 0)
            break;
        pid_t pid = waitpid(-1, &status, 0);
        if (pid < 0) {
            perror("waitpid");
            return 2;
        }
        for (long i = 0; i < jobs; i++) {
            if (run[i].pid != pid)
                continue;
            const char *why = verdict(status, run[i].log, &reached);
            if (!reached && (end == 0 || run[i].n < end))
                end = run[i].n;
            if (why) {
                bad++;
                printf("\nsweep: N=%lu FAILED: %s; its output:\n", run[i].n, why);
                show_log(run[i].log);
                printf("sweep: rerun it alone: ABACUS_FAIL_ALLOC=%lu %s --one\n", run[i].n,
                       argv[0]);
            }
            unlink(run[i].log);
            run[i].pid = 0;
            active--;
            done++;
            break;
        }
    }
    /* What crashed runs left behind goes with the directory. */
    nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    if (end == 0 && last == 0) {
        printf("sweep: every run up to N=%lu still reached its failure: the scenario is not "
               "deterministic\n",
               next - 1);
        bad++;
    }
    printf("sweep: %lu runs, %lu failed, %.1f s\n", done, bad, secs);
    free(run);
    return bad ? 1 : 0;
}
