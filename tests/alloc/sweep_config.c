/* sweep_config.c - allocation-failure sweep of the path a config and a scrape take: a config
 * with every feature (anchors and merge keys, all metric types, const labels, buckets,
 * objectives, TTLs, glob and regex rules with captures, drop rules) through cfg_load_string,
 * cfg_mapper_create and cfg_apply into a registry; StatsD names mapped (cache included) and
 * their families and series created and updated; a reload to a changed config (replace,
 * remove, add); a series deleted; scrapes in text, OpenMetrics and gzip.
 *
 * The sweep: a counting run finds how many allocations the scenario makes (T); then for every
 * N = 1, 2, ... a child process (fork, ABACUS_FAIL_ALLOC=N) runs the scenario with allocation N
 * failing, until a run no longer reaches N. Each child must end cleanly: no crash, no
 * sanitizer report and, in the address build, no leak (LeakSanitizer runs at the child's
 * exit). A child whose scenario reports success although an allocation failed must render
 * the same scrape as the counting run (a failure swallowed without trace is a bug too).
 * Failing runs are listed with their output (the sanitizer's backtrace) and fail the test.
 *
 * Usage: sweep_config [FIRST [LAST]]   runs N in [FIRST, LAST] (default: 1 to the end)
 *        ABACUS_FAIL_ALLOC=N sweep_config --one   one run, in this process (for a debugger)
 *        sweep_config --print                    the final scrape of a run without failures
 * Environment: ABACUS_SWEEP_JOBS (children at once; default: online CPUs).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "failmalloc.h"
#include "http/expfmt.h"
#include "registry.h"

/* ---- the scenario ------------------------------------------------------------------------- */

static const char config_v1[] =
    "server:\n"
    "  listen_address: \"127.0.0.1:0\"\n"
    "  telemetry_path: /metrics\n"
    "statsd:\n"
    "  listen_udp: \"\"\n"
    "  listen_tcp: \"\"\n"
    "  cache_size: 16\n"
    "defaults:\n"
    "  ttl: 0s\n"
    "  max_series: 100\n"
    "  observer_type: histogram\n"
    "  histogram_options: &hopts\n"
    "    buckets: [0.005, 0.01, 0.1, 1, 10]\n"
    "  summary_options:\n"
    "    quantiles: [{quantile: 0.5, error: 0.05}, {quantile: 0.99, error: 0.001}]\n"
    "    max_age: 10m\n"
    "    age_buckets: 3\n"
    "    buf_cap: 50\n"
    "metrics:\n"
    "  - &counter\n"
    "    name: plain_total\n"
    "    type: counter\n"
    "    help: \"shared help with \\\"quotes\\\" and a \\\\ backslash\"\n"
    "  - <<: *counter\n"
    "    name: jobs_processed_total\n"
    "    labels: [queue, outcome]\n"
    "    const_labels: {team: payments, region: eu}\n"
    "    ttl: 10m\n"
    "    max_series: 50\n"
    "  - name: job_duration_seconds\n"
    "    help: Time to process one job.\n"
    "    type: histogram\n"
    "    unit: seconds\n"
    "    labels: [queue]\n"
    "    histogram_options: {buckets: [0.1, 0.5, 1, 5]}\n"
    "  - name: payment_amount_euros\n"
    "    help: Amounts paid.\n"
    "    type: summary\n"
    "    labels: [currency]\n"
    "    summary_options:\n"
    "      quantiles: [{quantile: 0.5, error: 0.05}, {quantile: 0.9, error: 0.01}]\n"
    "      max_age: 5m\n"
    "  - name: workers_busy\n"
    "    help: Workers currently busy.\n"
    "    type: gauge\n"
    "  - name: doomed_total\n"
    "    type: counter\n"
    "    labels: [x]\n"
    "mappings:\n"
    "  - match: \"jobs.*.*\"\n"
    "    name: jobs_processed_total\n"
    "    labels: {queue: \"$1\", outcome: \"$2\"}\n"
    "  - match: \"job.*.duration\"\n"
    "    match_metric_type: observer\n"
    "    name: job_duration_seconds\n"
    "    labels: {queue: \"$1\"}\n"
    "  - match: \"^http\\\\.(\\\\w+)\\\\.(\\\\d{3})$\"\n"
    "    match_type: regex\n"
    "    name: \"http_${1}_responses_total\"\n"
    "    labels: {code: \"$2\"}\n"
    "    help: HTTP responses by code.\n"
    "    ttl: 1h\n"
    "  - match: \"billing.*.latency\"\n"
    "    observer_type: summary\n"
    "    name: billing_latency_seconds\n"
    "    labels: {op: \"$1\"}\n"
    "    summary_options: {quantiles: [{quantile: 0.9, error: 0.01}], max_age: 1m}\n"
    "  - match: \"hist.*.size\"\n"
    "    observer_type: histogram\n"
    "    histogram_options: *hopts\n"
    "    name: \"size_${1}_bytes\"\n"
    "    scale: 0.001\n"
    "  - match: \"cache.*.hits\"\n"
    "    name: cache_hits_total\n"
    "    labels: {cache: \"$1\"}\n"
    "    honor_labels: true\n"
    "  - match: \"debug.*\"\n"
    "    action: drop\n";

/* The reload: one metric changed (labels), one removed, one added, the rest unchanged. */
static const char config_v2[] =
    "metrics:\n"
    "  - name: jobs_processed_total\n"
    "    type: counter\n"
    "    help: \"shared help with \\\"quotes\\\" and a \\\\ backslash\"\n"
    "    labels: [queue, outcome]\n"
    "    const_labels: {team: payments, region: eu}\n"
    "    ttl: 10m\n"
    "    max_series: 50\n"
    "  - name: plain_total\n"
    "    type: counter\n"
    "    help: now different\n"
    "    labels: [shard]\n"
    "  - name: workers_busy\n"
    "    help: Workers currently busy.\n"
    "    type: gauge\n"
    "  - name: brand_new_info\n"
    "    type: gauge\n"
    "    const_labels: {version: \"1.2.3\"}\n"
    "mappings:\n"
    "  - match: \"jobs.*.*\"\n"
    "    name: jobs_processed_total\n"
    "    labels: {queue: \"$1\", outcome: \"$2\"}\n"
    "  - match: \"(.*)\\\\.regex$\"\n"
    "    match_type: regex\n"
    "    name: \"re_${1}\"\n";

typedef struct {
    char *buf;
    size_t len, cap;
} text;

static int text_add(text *t, const char *s, size_t n) {
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

/* Renders a whole scrape into out (when not NULL). 0, or -1 on a failure. */
static int scrape(reg_registry *r, exp_format fmt, int gzip, text *out) {
    exp_scrape *s = exp_scrape_begin(r, fmt, gzip);
    if (!s)
        return -1;
    char chunk[700]; /* small: every family crosses chunk boundaries */
    long n;
    while ((n = exp_scrape_read(s, chunk, sizeof chunk)) > 0) {
        if (out && text_add(out, chunk, (size_t)n) < 0) {
            n = -1;
            break;
        }
    }
    exp_scrape_end(s);
    return n == 0 ? 0 : -1;
}

static cfg_config *load(const char *yaml, size_t len) {
    cfg_errors errs = {0};
    cfg_config *c = cfg_load_string("sweep.yml", yaml, len, &errs);
    cfg_errors_print(&errs, stderr); /* out of memory, normally; shown with a failed run */
    cfg_errors_free(&errs);
    return c;
}

/* One StatsD name through the mapper to an update, as the ingest path does it: the declared
 * family or one created from the result. 0, or -1 on a failure. */
static int ingest(reg_thread *t, const cfg_mapper *m, cfg_mapper_cache *cache, const char *name,
                  cfg_metric_kind kind, double v) {
    cfg_map_result res;
    if (cfg_mapper_map(m, cache, name, strlen(name), kind, &res) < 0)
        return -1;
    if (res.drop)
        return 0;
    reg_type type = kind == CFG_MMT_GAUGE ? REG_GAUGE : REG_COUNTER;
    static const double buckets[] = {0.01, 0.1, 1};
    static const reg_objective obj[] = {{0.5, 0.05}};
    reg_family_def def = {.name = res.name,
                          .help = res.rule && res.rule->help ? res.rule->help : NULL,
                          .nlabels = res.nlabels,
                          .labels = res.label_names};
    if (kind == CFG_MMT_OBSERVER) {
        int summary = res.rule && res.rule->observer_type == CFG_OBS_SUMMARY;
        type = summary ? REG_SUMMARY : REG_HISTOGRAM;
        const cfg_histogram_options *h = res.rule ? &res.rule->histogram : NULL;
        def.nbuckets = h && h->nbuckets ? h->nbuckets : 3;
        def.buckets = h && h->nbuckets ? h->buckets : buckets;
        def.nobjectives = summary ? 1 : 0;
        def.objectives = summary ? obj : NULL;
    }
    def.type = type;
    int rc;
    reg_begin(t);
    reg_family *f = reg_family_find(t, res.name);
    if (!f && (rc = reg_family_add(t, &def, &f)) != REG_OK) {
        reg_end(t);
        return rc == REG_ENOMEM ? -1 : 0; /* a conflict is not what this sweep is about */
    }
    const reg_family_def *d = reg_family_definition(f);
    if (d->nlabels != res.nlabels) {
        reg_end(t);
        return 0;
    }
    switch (d->type) {
    case REG_COUNTER:
        rc = reg_counter_add(t, f, res.label_values, v);
        break;
    case REG_GAUGE:
        rc = reg_gauge_set(t, f, res.label_values, v);
        break;
    default:
        rc = reg_observe_n(t, f, res.label_values, v, 2);
        break;
    }
    reg_end(t);
    return rc == REG_ENOMEM ? -1 : 0;
}

typedef struct {
    const char *name;
    cfg_metric_kind kind;
    double v;
} event;

static const event events[] = {
    {"jobs.default.ok", CFG_MMT_COUNTER, 1},
    {"jobs.default.failed", CFG_MMT_COUNTER, 2},
    {"jobs.critical.ok", CFG_MMT_COUNTER, 3},
    {"jobs.default.ok", CFG_MMT_COUNTER, 1}, /* cache hit */
    {"job.default.duration", CFG_MMT_OBSERVER, 0.3},
    {"job.critical.duration", CFG_MMT_OBSERVER, 7},
    {"http.get.200", CFG_MMT_COUNTER, 5},
    {"http.post.503", CFG_MMT_COUNTER, 1},
    {"billing.charge.latency", CFG_MMT_OBSERVER, 0.02},
    {"billing.refund.latency", CFG_MMT_OBSERVER, 0.04},
    {"hist.upload.size", CFG_MMT_OBSERVER, 1500},
    {"cache.users.hits", CFG_MMT_COUNTER, 10},
    {"debug.anything", CFG_MMT_COUNTER, 1},
    {"unmapped.name-with.dashes", CFG_MMT_GAUGE, 42},
    {"7starts.with.digit", CFG_MMT_COUNTER, 1},
};

/* Direct updates of the declared families. */
static int update_declared(reg_thread *t) {
    static const char *const q[] = {"default"};
    static const char *const cur[] = {"EUR"};
    static const char *const none[] = {NULL};
    static const char *const x[][1] = {{"a"}, {"b\"quoted\\"}, {"c\nnewline"}};
    int rc = REG_OK;
    reg_begin(t);
    reg_family *f;
    if ((f = reg_family_find(t, "job_duration_seconds")))
        for (int i = 0; i < 5 && rc == REG_OK; i++)
            rc = reg_observe(t, f, q, 0.2 * i);
    if (rc == REG_OK && (f = reg_family_find(t, "payment_amount_euros")))
        for (int i = 0; i < 60 && rc == REG_OK; i++) /* past buf_cap: the buffer is merged */
            rc = reg_observe(t, f, cur, (double)(i * 7 % 23));
    if (rc == REG_OK && (f = reg_family_find(t, "workers_busy")))
        rc = reg_gauge_add(t, f, none, 3);
    if (rc == REG_OK && (f = reg_family_find(t, "doomed_total")))
        for (int i = 0; i < 3 && rc == REG_OK; i++)
            rc = reg_counter_add(t, f, x[i], 1);
    reg_end(t);
    return rc == REG_OK ? 0 : -1;
}

/* The line of the step that reported a failure (0: none), for the run's report. */
static int failed_line;
#define FAIL()                                                                                     \
    do {                                                                                           \
        failed_line = __LINE__;                                                                    \
        goto done;                                                                                 \
    } while (0)

/* 0 when every step succeeded, -1 when one reported a failure (after cleaning up). The
 * text scrape taken after the reload is appended to out. */
static int scenario(text *out) {
    int ok = -1;
    reg_registry *r = NULL;
    reg_thread *t = NULL;
    cfg_mapper *m = NULL, *m2 = NULL;
    cfg_mapper_cache *cache = NULL;
    cfg_config *c1 = NULL, *c2 = NULL;
    cfg_errors errs = {0};

    if (!(c1 = load(config_v1, sizeof config_v1 - 1)))
        FAIL();
    if (!(m = cfg_mapper_create(c1, &errs)))
        FAIL();
    reg_options o = {.max_series = 1000, .start_reaper = 0};
    if (!(r = reg_create(&o)) || !(t = reg_thread_attach(r)))
        FAIL();
    if (cfg_apply(r, NULL, c1) != REG_OK)
        FAIL();
    if (!(cache = cfg_mapper_cache_create(4))) /* small: entries are evicted */
        FAIL();
    for (size_t i = 0; i < sizeof events / sizeof events[0]; i++)
        if (ingest(t, m, cache, events[i].name, events[i].kind, events[i].v) < 0)
            FAIL();
    if (update_declared(t) < 0)
        FAIL();
    if (scrape(r, EXP_FMT_TEXT, 0, NULL) < 0 || scrape(r, EXP_FMT_OPENMETRICS, 1, NULL) < 0)
        FAIL();

    /* Reload: new config, new mapper (the cache notices), apply against the old one. */
    if (!(c2 = load(config_v2, sizeof config_v2 - 1)))
        FAIL();
    if (!(m2 = cfg_mapper_create(c2, &errs)))
        FAIL();
    if (cfg_apply(r, c1, c2) != REG_OK)
        FAIL();
    if (ingest(t, m2, cache, "jobs.default.ok", CFG_MMT_COUNTER, 1) < 0 ||
        ingest(t, m2, cache, "some.thing.regex", CFG_MMT_COUNTER, 1) < 0)
        FAIL();
    static const char *const sh[] = {"3"};
    reg_begin(t);
    reg_family *f = reg_family_find(t, "plain_total");
    int rc = f ? reg_counter_add(t, f, sh, 2) : REG_OK;
    reg_end(t);
    if (rc != REG_OK)
        FAIL();
    static const char *const gone[] = {"default", "failed"};
    reg_begin(t);
    f = reg_family_find(t, "jobs_processed_total");
    if (f && reg_family_hold(f) != REG_OK)
        f = NULL;
    reg_end(t);
    if (f) {
        rc = reg_series_delete(r, f, gone);
        reg_family_release(r, f);
        if (rc != REG_OK && rc != REG_ENOTFOUND)
            FAIL();
    }
    if (reg_family_remove(r, "unmapped_name_with_dashes") == REG_ENOMEM)
        FAIL();
    if (scrape(r, EXP_FMT_OPENMETRICS, 0, NULL) < 0 || scrape(r, EXP_FMT_TEXT, 0, out) < 0)
        FAIL();
    ok = 0;
done:
    cfg_errors_free(&errs);
    cfg_mapper_cache_free(cache);
    cfg_mapper_free(m2);
    cfg_mapper_free(m);
    if (t)
        reg_thread_detach(t);
    if (r)
        reg_destroy(r);
    cfg_free(c2);
    cfg_free(c1);
    return ok;
}

/* ---- the sweep ---------------------------------------------------------------------------- */

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
    text t = {0};
    for (size_t i = 0; i < k; i++)
        if (text_add(&t, lines[i], strlen(lines[i])) < 0 || text_add(&t, "\n", 1) < 0)
            break;
    free(lines);
    free(copy);
    return t.buf ? t.buf : strdup("");
}

static char *reference_path;

/* In a child: run the scenario once with the chosen allocation failing. */
static int run_one(void) {
    text out = {0};
    failmalloc_arm();
    int rc = scenario(&out);
    failmalloc_disarm();
    unsigned long count = failmalloc_count();
    int hit = failmalloc_hit();
    const char *n = getenv("ABACUS_FAIL_ALLOC");
    printf("sweep: N=%s allocations=%lu hit=%d scenario=%s", n ? n : "0", count, hit,
           rc == 0 ? "ok" : "error");
    if (rc != 0)
        printf(" (at %s:%d)", __FILE__, failed_line);
    printf("\n");
    int code = hit ? CHILD_HIT : CHILD_NOT_REACHED;
    char *mine = rc == 0 ? canonical(out.buf ? out.buf : "") : NULL;
    if (rc == 0 && !mine)
        code = CHILD_SETUP;
    if (mine && reference_path && (!n || !strcmp(n, "0"))) { /* the counting run */
        FILE *f = fopen(reference_path, "w");
        if (!f || fputs(mine, f) < 0 || fclose(f) != 0)
            code = CHILD_SETUP;
    } else if (mine && reference_path) {
        FILE *f = fopen(reference_path, "r");
        text ref = {0};
        char buf[4096];
        size_t k;
        while (f && (k = fread(buf, 1, sizeof buf, f)) > 0)
            if (text_add(&ref, buf, k) < 0)
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
        alarm(120); /* a run that hangs (a lock kept on an error path) dies of SIGALRM */
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

int main(int argc, char **argv) {
    if (argc > 1 && !strcmp(argv[1], "--one"))
        return run_one();
    if (argc > 1 && !strcmp(argv[1], "--print")) { /* the scrape the scenario ends with */
        text out = {0};
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
    if (!lf || fscanf(lf, "sweep: N=0 allocations=%lu", &total) != 1) {
        printf("sweep: no allocation count from the counting run\n");
        return 1;
    }
    fclose(lf);
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
    unlink(ref);
    rmdir(dir);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    if (end == 0 && last == 0) {
        printf("sweep: every run up to N=%lu still reached its failure: the scenario is not "
               "deterministic\n", next - 1);
        bad++;
    }
    printf("sweep: %lu runs, %lu failed, %.1f s\n", done, bad, secs);
    free(run);
    return bad ? 1 : 0;
}
