/* persist.c - the snapshot file: written atomically every --persistence.interval by a thread
 * of its own and at shutdown, loaded at start-up, refused and renamed aside when bad.
 *
 * A write goes to `<file>.tmp` (created 0600, truncated), is fsynced, renamed over the file
 * and the directory is fsynced: a crash at any point leaves the previous complete snapshot
 * or the new one, never a mix. The registry is walked in bounded sections and the file is
 * written between them (reg_snapshot_write), so ingest and scrapes never wait for the disk.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "famset.h"
#include "log.h"
#include "persist.h"

enum { F_WRITES, F_LAST_TS, F_LAST_DURATION, F_LAST_BYTES, F_RESTORED, F_LOAD_FAILURES, F_COUNT };

static const char *const l_outcome[] = {"outcome"};

#define DEF(n, h, t)                                                                               \
    { .name = n, .help = h, .type = t }

static const reg_family_def defs[F_COUNT] = {
    [F_WRITES] = {.name = "abacus_persistence_writes_total",
                  .help = "Snapshot writes to --persistence.file, by outcome (success, failure).",
                  .type = REG_COUNTER,
                  .nlabels = 1,
                  .labels = l_outcome},
    [F_LAST_TS] = DEF("abacus_persistence_last_write_success_timestamp_seconds",
                      "Unix time of the last successful snapshot write.", REG_GAUGE),
    [F_LAST_DURATION] = DEF("abacus_persistence_last_write_duration_seconds",
                            "Time the last successful snapshot write took.", REG_GAUGE),
    [F_LAST_BYTES] =
        DEF("abacus_persistence_last_write_bytes", "Size of the last snapshot written.", REG_GAUGE),
    [F_RESTORED] = DEF("abacus_persistence_restored_series",
                       "Series restored from the snapshot at start-up.", REG_GAUGE),
    [F_LOAD_FAILURES] = DEF("abacus_persistence_load_failures_total",
                            "Snapshot files refused or unreadable at start-up.", REG_COUNTER),
};

struct exp_persist {
    reg_registry *reg;
    reg_thread *t; /* used by one thread at a time: the writer thread, else the caller */
    exp_famset fams;
    char *path, *tmp, *aside;
    uint64_t interval_ns;
    pthread_mutex_t mu; /* guards stopping; with cv, the writer's timed wait */
    pthread_cond_t cv;  /* on CLOCK_MONOTONIC */
    int stopping;
    int running; /* a thread was started */
    pthread_t thread;
};

/* ---- self-metrics ---------------------------------------------------------------------------- */

typedef int (*update_fn)(reg_thread *, reg_family *, const char *const *, double);

/* Apply one update to family i (relinked once when a reload removed it). Cannot fail: a
 * self-metric that cannot be updated keeps its value. */
static void metric(exp_persist *p, int i, update_fn fn, const char *label, double v) {
    const char *values[] = {label};
    reg_begin(p->t);
    for (int attempt = 0; attempt < 2; attempt++) {
        reg_family *f = exp_famset_get(&p->fams, i);
        if (fn(p->t, f, values, v) != REG_EGONE ||
            exp_famset_relink(&p->fams, p->t, i, f) != REG_OK)
            break;
    }
    reg_end(p->t);
}

static int touch_fn(reg_thread *t, reg_family *f, const char *const *values, double v) {
    (void)v;
    return reg_touch(t, f, values);
}

/* Every series exported from the start. Cannot fail (see metric). */
static void metrics_init(exp_persist *p) {
    metric(p, F_WRITES, touch_fn, "success", 0);
    metric(p, F_WRITES, touch_fn, "failure", 0);
    for (int i = F_LAST_TS; i < F_COUNT; i++)
        metric(p, i, touch_fn, NULL, 0);
}

/* ---- lifecycle ------------------------------------------------------------------------------- */

/* path followed by suffix, or NULL when out of memory. */
static char *with_suffix(const char *path, const char *suffix) {
    char *s;
    return asprintf(&s, "%s%s", path, suffix) < 0 ? NULL : s;
}

static void persist_free(exp_persist *p) {
    exp_famset_destroy(&p->fams);
    if (p->t)
        reg_thread_detach(p->t);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    free(p->path);
    free(p->tmp);
    free(p->aside);
    free(p);
}

/* Returns the persistence, or NULL with a reason in err. */
exp_persist *exp_persist_create(reg_registry *r, const char *path, uint64_t interval_ns, char *err,
                                size_t errlen) {
    exp_persist *p = calloc(1, sizeof *p);
    if (!p) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    p->reg = r;
    p->interval_ns = interval_ns;
    exp_famset_init(&p->fams, r, defs, F_COUNT);
    pthread_mutex_init(&p->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&p->cv, &ca);
    pthread_condattr_destroy(&ca);
    p->path = strdup(path);
    p->tmp = with_suffix(path, ".tmp");
    p->aside = with_suffix(path, ".corrupt");
    p->t = reg_thread_attach(r);
    if (!p->path || !p->tmp || !p->aside || !p->t) {
        snprintf(err, errlen, "out of memory");
        persist_free(p);
        return NULL;
    }
    reg_begin(p->t);
    int rc = exp_famset_link_all(&p->fams, p->t, err, errlen);
    reg_end(p->t);
    if (rc != REG_OK) {
        persist_free(p);
        return NULL;
    }
    metrics_init(p);
    return p;
}

/* ---- writing --------------------------------------------------------------------------------- */

typedef struct {
    int fd;
    int err; /* errno of the failed write */
} fd_sink;

static int write_all(void *arg, const void *buf, size_t len) {
    fd_sink *s = arg;
    const char *b = buf;
    while (len > 0) {
        ssize_t n = write(s->fd, b, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            s->err = n < 0 ? errno : EIO;
            return -1;
        }
        b += n;
        len -= (size_t)n;
    }
    return 0;
}

/* fsync the directory holding path, so the rename is durable. 0, or -1 with errno set. */
static int sync_dir(const char *path) {
    char *copy = strdup(path);
    if (!copy)
        return -1;
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free(copy);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    int e = errno;
    close(fd);
    errno = e;
    return rc;
}

static double mono_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The temporary file, written and synced. 0, or -1 with the reason in why. */
static int write_tmp(exp_persist *p, reg_snapshot_stats *st, char *why, size_t whylen) {
    fd_sink s = {open(p->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600), 0};
    if (s.fd < 0) {
        snprintf(why, whylen, "open %s: %s", p->tmp, strerror(errno));
        return -1;
    }
    char err[128];
    int rc = reg_snapshot_write(p->t, write_all, &s, st, err, sizeof err);
    if (rc != 0)
        snprintf(why, whylen, "write %s: %s", p->tmp, s.err ? strerror(s.err) : err);
    else if (fsync(s.fd) != 0)
        snprintf(why, whylen, "fsync %s: %s", p->tmp, strerror(errno)), rc = -1;
    if (close(s.fd) != 0 && rc == 0)
        snprintf(why, whylen, "close %s: %s", p->tmp, strerror(errno)), rc = -1;
    return rc;
}

/* Returns 0, or -1 (logged and counted). */
int exp_persist_write(exp_persist *p) {
    double t0 = mono_seconds();
    reg_snapshot_stats st = {0};
    char why[512];
    int rc = write_tmp(p, &st, why, sizeof why);
    if (rc == 0 && rename(p->tmp, p->path) != 0)
        snprintf(why, sizeof why, "rename to %s: %s", p->path, strerror(errno)), rc = -1;
    if (rc == 0 && sync_dir(p->path) != 0)
        snprintf(why, sizeof why, "fsync the directory of %s: %s", p->path, strerror(errno)),
            rc = -1;
    if (rc != 0) {
        unlink(p->tmp);
        exp_log(EXP_LOG_ERROR, "snapshot write failed", "file", p->path, "err", why, NULL);
        metric(p, F_WRITES, reg_counter_add, "failure", 1);
        return -1;
    }
    double took = mono_seconds() - t0;
    metric(p, F_WRITES, reg_counter_add, "success", 1);
    metric(p, F_LAST_TS, reg_gauge_set, NULL, (double)time(NULL));
    metric(p, F_LAST_DURATION, reg_gauge_set, NULL, took);
    metric(p, F_LAST_BYTES, reg_gauge_set, NULL, (double)st.bytes);
    if (exp_log_enabled(EXP_LOG_DEBUG)) {
        char fams[24], series[24], bytes[24], secs[32];
        snprintf(fams, sizeof fams, "%zu", st.families);
        snprintf(series, sizeof series, "%zu", st.series);
        snprintf(bytes, sizeof bytes, "%llu", (unsigned long long)st.bytes);
        snprintf(secs, sizeof secs, "%.6f", took);
        exp_log(EXP_LOG_DEBUG, "snapshot written", "file", p->path, "families", fams, "series",
                series, "bytes", bytes, "duration_seconds", secs, NULL);
    }
    return 0;
}

/* ---- loading --------------------------------------------------------------------------------- */

/* Read the whole file (at most EXP_PERSIST_MAX_BYTES). Returns the bytes (*len set), or NULL
 * with *missing set (ENOENT) or the reason in why; *refuse when the file itself is at fault
 * (too large) rather than the reading. */
static unsigned char *read_file(const char *path, size_t *len, int *missing, int *refuse, char *why,
                                size_t whylen) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat sb;
    if (fd < 0 || fstat(fd, &sb) != 0) {
        *missing = fd < 0 && errno == ENOENT;
        snprintf(why, whylen, "%s", strerror(errno));
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    unsigned char *buf = NULL;
    if ((uint64_t)sb.st_size > EXP_PERSIST_MAX_BYTES) {
        *refuse = 1;
        snprintf(why, whylen, "too large: %lld bytes, the limit is %llu", (long long)sb.st_size,
                 (unsigned long long)EXP_PERSIST_MAX_BYTES);
    } else if ((buf = malloc((size_t)sb.st_size + 1)) == NULL) {
        snprintf(why, whylen, "out of memory");
    }
    size_t n = 0;
    while (buf && n < (size_t)sb.st_size) {
        ssize_t k = read(fd, buf + n, (size_t)sb.st_size - n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0) { /* shrank meanwhile, or an I/O error: the size is what we have */
            if (k < 0) {
                snprintf(why, whylen, "%s", strerror(errno));
                free(buf);
                buf = NULL;
            }
            break;
        }
        n += (size_t)k;
    }
    close(fd);
    *len = n;
    return buf;
}

/* One refused file: logged with the file and the reason, renamed aside, counted. */
static void refuse(exp_persist *p, const char *why) {
    const char *moved = p->aside;
    if (rename(p->path, p->aside) != 0)
        moved = strerror(errno);
    exp_log(EXP_LOG_ERROR, "snapshot refused, starting without it", "file", p->path, "reason", why,
            "moved_to", moved, NULL);
    metric(p, F_LOAD_FAILURES, reg_counter_add, NULL, 1);
}

/* What a successful load did, in log lines. */
static void log_loaded(const exp_persist *p, const reg_snapshot_report *rep) {
    char fams[24], series[24], refused[24], groups[24], age[32];
    snprintf(fams, sizeof fams, "%zu", rep->families);
    snprintf(groups, sizeof groups, "%zu", rep->groups);
    snprintf(series, sizeof series, "%zu", rep->series);
    snprintf(refused, sizeof refused, "%zu", rep->series_refused);
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    double written = (double)rep->written_ns / 1e9;
    snprintf(age, sizeof age, "%.3f", (double)now.tv_sec + (double)now.tv_nsec / 1e9 - written);
    exp_log(EXP_LOG_INFO, "snapshot loaded", "file", p->path, "families", fams, "series", series,
            "series_refused", refused, "groups", groups, "age_seconds", age, NULL);
    if (rep->conflicts) {
        char n[24];
        snprintf(n, sizeof n, "%zu", rep->conflicts);
        exp_log(EXP_LOG_WARN, "snapshot families skipped: their definition changed", "file",
                p->path, "count", n, "families", rep->conflict_names, NULL);
    }
    if (rep->series_refused)
        exp_log(EXP_LOG_WARN, "snapshot series refused by a series limit", "file", p->path, "count",
                refused, NULL);
    if (rep->groups_refused) {
        char n[24];
        snprintf(n, sizeof n, "%zu", rep->groups_refused);
        exp_log(EXP_LOG_WARN, "snapshot pushed groups refused (a conflict or a series limit)",
                "file", p->path, "count", n, "groups", rep->refused_groups, NULL);
    }
}

/* Returns the series restored. Cannot fail (see persist.h). */
size_t exp_persist_load(exp_persist *p) {
    size_t len = 0;
    int missing = 0, bad = 0;
    char why[512];
    unsigned char *buf = read_file(p->path, &len, &missing, &bad, why, sizeof why);
    if (!buf) {
        if (missing) {
            exp_log(EXP_LOG_INFO, "no snapshot file yet, starting empty", "file", p->path, NULL);
        } else if (bad) {
            refuse(p, why);
        } else {
            exp_log(EXP_LOG_ERROR, "cannot read the snapshot, starting without it", "file", p->path,
                    "err", why, NULL);
            metric(p, F_LOAD_FAILURES, reg_counter_add, NULL, 1);
        }
        return 0;
    }
    reg_snapshot_report rep;
    int rc = reg_snapshot_load(p->t, buf, len, &rep, why, sizeof why);
    free(buf);
    if (rc == REG_EINVAL) {
        refuse(p, why);
        return 0;
    }
    if (rc != REG_OK) {
        exp_log(EXP_LOG_ERROR, "snapshot load failed", "file", p->path, "err", why, NULL);
        metric(p, F_LOAD_FAILURES, reg_counter_add, NULL, 1);
        return rep.series;
    }
    log_loaded(p, &rep);
    metric(p, F_RESTORED, reg_gauge_set, NULL, (double)rep.series);
    return rep.series;
}

/* ---- the writer thread ----------------------------------------------------------------------- */

static void *run(void *arg) {
    exp_persist *p = arg;
    pthread_mutex_lock(&p->mu);
    while (!p->stopping) {
        struct timespec at;
        clock_gettime(CLOCK_MONOTONIC, &at);
        uint64_t ns = (uint64_t)at.tv_nsec + p->interval_ns % 1000000000ull;
        at.tv_sec += (time_t)(p->interval_ns / 1000000000ull + ns / 1000000000ull);
        at.tv_nsec = (long)(ns % 1000000000ull);
        int rc = 0;
        while (!p->stopping && rc != ETIMEDOUT)
            rc = pthread_cond_timedwait(&p->cv, &p->mu, &at);
        if (p->stopping)
            break;
        pthread_mutex_unlock(&p->mu);
        exp_persist_write(p);
        pthread_mutex_lock(&p->mu);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

/* 0, or -1 with a reason in err. */
int exp_persist_start(exp_persist *p, char *err, size_t errlen) {
    if (p->interval_ns == 0)
        return 0;
    int rc = pthread_create(&p->thread, NULL, run, p);
    if (rc != 0) {
        snprintf(err, errlen, "cannot start the snapshot writer: %s", strerror(rc));
        return -1;
    }
    p->running = 1;
    return 0;
}

/* Cannot fail. */
void exp_persist_stop(exp_persist *p, int final_write) {
    if (!p)
        return;
    if (p->running) {
        pthread_mutex_lock(&p->mu);
        p->stopping = 1;
        pthread_cond_signal(&p->cv);
        pthread_mutex_unlock(&p->mu);
        pthread_join(p->thread, NULL);
    }
    if (final_write && exp_persist_write(p) == 0)
        exp_log(EXP_LOG_INFO, "final snapshot written", "file", p->path, NULL);
    persist_free(p);
}
