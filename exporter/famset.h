/* famset.h - a fixed set of families that one module owns and holds (self-metrics), each
 * registered again when a reload removed it because a declared metric took its name.
 * Internal to exporter/.
 */
#ifndef ABACUS_EXPORTER_FAMSET_H
#define ABACUS_EXPORTER_FAMSET_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>

#include "registry.h"

#define EXP_FAMSET_MAX 32

typedef struct {
    reg_registry *reg;
    const reg_family_def *defs;
    int n;
    pthread_mutex_t mu;                        /* guards replacing fam[i] (relink) */
    _Atomic(reg_family *) fam[EXP_FAMSET_MAX]; /* each held (reg_family_hold), or NULL */
} exp_famset;

/* Nothing registered yet; n must be at most EXP_FAMSET_MAX. Cannot fail. */
void exp_famset_init(exp_famset *fs, reg_registry *r, const reg_family_def *defs, int n);
/* Register and hold every family, in order. Inside a section. Returns REG_OK, or the first
 * registry error with "registering <name>: <error>" in err (those registered stay held). */
int exp_famset_link_all(exp_famset *fs, reg_thread *t, char *err, size_t errlen);
/* After an update of family i failed with REG_EGONE: register it again unless someone else
 * already replaced `gone`. Inside a section. Returns REG_OK when the caller may retry, else
 * the registry error. */
int exp_famset_relink(exp_famset *fs, reg_thread *t, int i, reg_family *gone);
/* Releases every held family. Cannot fail. */
void exp_famset_destroy(exp_famset *fs);

/* The current family i (NULL before it was linked). Cannot fail. */
static inline reg_family *exp_famset_get(exp_famset *fs, int i) {
    /* seq_cst (acquire would do): pairs with the stores in exp_famset_link_all/relink, so the
     * family seen is registered and held. */
    return atomic_load(&fs->fam[i]);
}

#endif
