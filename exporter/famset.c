/* famset.c - a module's own held families, relinked after a reload removed one. */
#include <stdio.h>

#include "famset.h"

/* Cannot fail. */
void exp_famset_init(exp_famset *fs, reg_registry *r, const reg_family_def *defs, int n) {
    fs->reg = r;
    fs->defs = defs;
    fs->n = n < EXP_FAMSET_MAX ? n : EXP_FAMSET_MAX;
    pthread_mutex_init(&fs->mu, NULL);
    for (int i = 0; i < EXP_FAMSET_MAX; i++)
        atomic_init(&fs->fam[i], NULL);
}

/* Register family i and hold it. Inside a section. Returns a registry error. */
static int link_one(exp_famset *fs, reg_thread *t, int i, reg_family **out) {
    reg_family *f;
    reg_family_def def = fs->defs[i];
    def.flags |= REG_FAMILY_OWN; /* limits meant for clients never refuse abacus's own */
    int rc = reg_family_add(t, &def, &f);
    if (rc == REG_OK)
        rc = reg_family_hold(f);
    if (rc == REG_OK)
        *out = f;
    return rc;
}

/* Returns REG_OK, or the first registry error with a reason in err. */
int exp_famset_link_all(exp_famset *fs, reg_thread *t, char *err, size_t errlen) {
    int rc = REG_OK;
    for (int i = 0; i < fs->n && rc == REG_OK; i++) {
        reg_family *f;
        rc = link_one(fs, t, i, &f);
        /* seq_cst, release needed: pairs with exp_famset_get's load, so a reader that sees f
         * sees the family registered and held. */
        if (rc == REG_OK)
            atomic_store(&fs->fam[i], f);
        else
            snprintf(err, errlen, "registering %s: %s", fs->defs[i].name, reg_strerror(rc));
    }
    return rc;
}

/* Returns REG_OK when the caller may retry, else the registry error. */
int exp_famset_relink(exp_famset *fs, reg_thread *t, int i, reg_family *gone) {
    int rc = REG_OK;
    pthread_mutex_lock(&fs->mu);
    /* seq_cst, relaxed would do: after init every store to fam[i] is made under mu, held
     * here. Not `gone` any more: someone else already relinked. */
    if (atomic_load(&fs->fam[i]) == gone) {
        reg_family *f;
        rc = link_one(fs, t, i, &f);
        if (rc == REG_OK) {
            /* seq_cst, release needed: pairs with exp_famset_get's load (as in link_all). */
            atomic_store(&fs->fam[i], f);
            reg_family_release(fs->reg, gone);
        }
    }
    pthread_mutex_unlock(&fs->mu);
    return rc;
}

/* Cannot fail. */
void exp_famset_destroy(exp_famset *fs) {
    for (int i = 0; i < fs->n; i++) {
        /* seq_cst, relaxed would do: the users have stopped (joined) before destroy. */
        reg_family *f = atomic_load(&fs->fam[i]);
        if (f)
            reg_family_release(fs->reg, f);
    }
    pthread_mutex_destroy(&fs->mu);
}
