/* apply.c - makes a registry's declared families match a loaded configuration (startup and
 * reload): unchanged families keep their series, changed ones are replaced, dropped ones are
 * removed, and label-less declared metrics get their one series at once.
 */
#include <stdlib.h>
#include <string.h>

#include "config.h"

#define APPLY_TRIES 4 /* a concurrent creator may win the name between remove and add */

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Declares one metric. Runs its own sections; removes outside of them. */
static int apply_one(reg_registry *r, reg_thread *t, const cfg_metric *m) {
    static const char *const no_values[1] = {NULL};
    reg_family_def def;
    cfg_metric_family_def(m, &def);
    for (int attempt = 0; attempt < APPLY_TRIES; attempt++) {
        reg_begin(t);
        reg_family *f = reg_family_find(t, m->name);
        int rc = REG_ECONFLICT;
        if (!f || reg_family_matches(f, &def)) {
            rc = reg_family_add(t, &def, &f);
            if (rc == REG_OK && m->nlabels == 0)
                rc = reg_touch(t, f, no_values);
        }
        reg_end(t);
        if (rc != REG_ECONFLICT && rc != REG_EGONE)
            return rc;
        /* Another definition holds the name (an older declaration, or a family a mapping or a
         * push created): the declaration wins. EGONE: it was removed under us; retry. */
        if (rc == REG_ECONFLICT) {
            rc = reg_family_remove(r, m->name);
            if (rc != REG_OK && rc != REG_ENOTFOUND)
                return rc;
        }
    }
    return REG_ECONFLICT;
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
        int rc = apply_one(r, t, &c->metrics[i]);
        if (rc != REG_OK && first == REG_OK)
            first = rc;
    }
    reg_thread_detach(t); /* records are reused; a leaked one would slow every grace period */
    return first;
}
