/* apply.c - makes a registry's declared families match a loaded configuration (startup and
 * reload): unchanged families keep their series, changed ones are replaced, dropped ones are
 * removed, and label-less declared metrics get their one series at once.
 */
#include <stdlib.h>
#include <string.h>

#include "config.h"

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Declares one metric: the declaration wins over any other family of that name (an older
 * declaration, or one a mapping or a push created), and the old family is replaced in one
 * step, so a concurrent scrape finds the old family or the new one, never neither. Returns
 * a registry error. Runs its own section. */
static int apply_one(reg_thread *t, const cfg_metric *m) {
    static const char *const no_values[1] = {NULL};
    reg_family_def def;
    cfg_metric_family_def(m, &def);
    reg_begin(t);
    reg_family *f;
    int rc = reg_family_replace(t, &def, &f);
    if (rc == REG_OK && m->nlabels == 0)
        rc = reg_touch(t, f, no_values);
    reg_end(t);
    return rc;
}

/* Returns REG_OK or the first registry error. A conflict with pushed groups is found before
 * anything changes; after any other error it keeps going so that as much of c as possible
 * is in place. Must not be called inside a section. */
/* REG_OK when no declared metric of c conflicts with what pushed groups hold (a type, a
 * job label, a name a pushed family renders), else REG_ECONFLICT: checked before anything
 * changes, so a reload refused for it leaves the registry as it was. */
static int check_pushed(reg_registry *r, const cfg_config *c) {
    reg_thread *t = reg_thread_attach(r);
    if (!t)
        return REG_ENOMEM;
    int rc = REG_OK;
    for (size_t i = 0; c && i < c->nmetrics && rc == REG_OK; i++) {
        reg_family_def def;
        cfg_metric_family_def(&c->metrics[i], &def);
        rc = reg_family_fits_pushed(t, &def);
    }
    reg_thread_detach(t);
    return rc;
}

int cfg_apply(reg_registry *r, const cfg_config *old, const cfg_config *c) {
    int first = check_pushed(r, c);
    if (first != REG_OK)
        return first; /* nothing changed */
    if (old && old->nmetrics) {
        const char **names = NULL;
        size_t n = c ? c->nmetrics : 0;
        if (n && !(names = malloc(n * sizeof *names)))
            return REG_ENOMEM; /* nothing changed yet */
        for (size_t i = 0; i < n; i++)
            names[i] = c->metrics[i].name;
        if (n)
            qsort(names, n, sizeof *names, cmp_str);
        for (size_t i = 0; i < old->nmetrics; i++) {
            const char *name = old->metrics[i].name;
            if (n && bsearch(&name, names, n, sizeof *names, cmp_str))
                continue;
            int rc = reg_family_remove(r, name);
            if (rc != REG_OK && rc != REG_ENOTFOUND && first == REG_OK)
                first = rc;
        }
        free(names);
    }
    if (!c || c->nmetrics == 0)
        return first;
    reg_thread *t = reg_thread_attach(r);
    if (!t)
        return REG_ENOMEM;
    for (size_t i = 0; i < c->nmetrics; i++) {
        int rc = apply_one(t, &c->metrics[i]);
        if (rc != REG_OK && first == REG_OK)
            first = rc;
    }
    reg_thread_detach(t); /* records are reused; a leaked one would slow every grace period */
    return first;
}
