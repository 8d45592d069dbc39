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

/* Returns REG_OK or the first registry error; keeps going after an error so that as much of
 * c as possible is in place. Must not be called inside a section. */
int cfg_apply(reg_registry *r, const cfg_config *old, const cfg_config *c) {
    int first = REG_OK;
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
