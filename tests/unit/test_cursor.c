/* test_cursor.c - unit tests of registry cursors (reg_cursor_*) and reg_family_replace: a
 * walk over several sections hands out each label set once, survives removals and
 * re-creations between its sections, and a paused cursor holds back no reclamation. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "registry/internal.h" /* the reaper's epoch record: how many frees are pending */
#include "registry.h"

#define N 1000

typedef struct {
    reg_registry *r;
    reg_thread *t;
    reg_family *f;
    int seen[2 * N]; /* label value "i" -> times handed out */
} fixture;

static const char *const LBL[] = {"id"};

static int setup(void **state) {
    fixture *fx = calloc(1, sizeof(*fx));
    reg_options o = {0}; /* no reaper thread: the test reaps */
    fx->r = reg_create(&o);
    fx->t = reg_thread_attach(fx->r);
    reg_family_def d = {.name = "walk_total", .type = REG_COUNTER, .nlabels = 1, .labels = LBL};
    reg_begin(fx->t);
    int rc = reg_family_add(fx->t, &d, &fx->f);
    reg_end(fx->t);
    *state = fx;
    return rc == REG_OK ? 0 : -1;
}

static int teardown(void **state) {
    fixture *fx = *state;
    reg_thread_detach(fx->t);
    reg_destroy(fx->r);
    free(fx);
    return 0;
}

static void add(fixture *fx, int i) {
    char v[16];
    snprintf(v, sizeof v, "%d", i);
    const char *vals[] = {v};
    reg_begin(fx->t);
    assert_int_equal(reg_counter_add(fx->t, fx->f, vals, 1), REG_OK);
    reg_end(fx->t);
}

static void del(fixture *fx, int i) {
    char v[16];
    snprintf(v, sizeof v, "%d", i);
    const char *vals[] = {v};
    assert_int_equal(reg_series_delete(fx->r, fx->f, vals), REG_OK);
}

/* Hand out up to k series of the view, counting each label value. Returns how many. */
static size_t take(fixture *fx, reg_cursor *c, size_t k) {
    reg_series *const *v;
    size_t n = reg_cursor_view(c, &v);
    if (k > n)
        k = n;
    for (size_t i = 0; i < k; i++) {
        char buf[16];
        assert_true(reg_series_label_value(v[i], 0, buf, sizeof buf) > 0);
        fx->seen[atoi(buf)]++;
    }
    reg_cursor_consume(c, k);
    return k;
}

/* Pause, leave the section, run between(), enter a new one and resume. */
static void next_section(fixture *fx, reg_cursor *c, void (*between)(fixture *)) {
    reg_cursor_pause(c);
    reg_end(fx->t);
    if (between)
        between(fx);
    reg_begin(fx->t);
    assert_int_equal(reg_cursor_resume(fx->t, c), REG_OK);
}

static void test_walk_across_sections(void **state) {
    fixture *fx = *state;
    for (int i = 0; i < N; i++)
        add(fx, i);
    reg_cursor c;
    reg_begin(fx->t);
    assert_int_equal(reg_cursor_open(fx->t, &c, fx->f), REG_OK);
    size_t total = 0, got;
    while ((got = take(fx, &c, 37)) > 0) {
        total += got;
        next_section(fx, &c, NULL);
    }
    reg_cursor_close(fx->r, &c);
    reg_end(fx->t);
    assert_int_equal(total, N);
    for (int i = 0; i < N; i++)
        assert_int_equal(fx->seen[i], 1);
}

/* Between the sections: delete 10 series already handed out and 10 not yet, re-create half
 * of each, and add new ones. handed[i]: 1 handed out before, -1 deleted for good. */
static int handed[N], nhanded;

static void churn(fixture *fx) {
    for (int i = 0; i < N; i++)
        handed[i] = 0;
    for (int i = 0; i < N; i++)
        if (fx->seen[i])
            handed[i] = 1;
    nhanded = 0;
    int out_del = 0, in_del = 0;
    for (int i = 0; i < N; i++) {
        if (handed[i] && out_del < 10) {
            del(fx, i);
            if (out_del++ % 2 == 0)
                add(fx, i); /* re-created: must not be handed out again */
        } else if (!handed[i] && in_del < 10) {
            del(fx, i);
            if (in_del++ % 2 == 0)
                add(fx, i); /* re-created: handed out once */
            else
                handed[i] = -1; /* gone: never handed out */
        }
    }
    for (int i = N; i < N + 7; i++)
        add(fx, i); /* new: may or may not appear, at most once */
}

static void test_removals_between_sections(void **state) {
    fixture *fx = *state;
    for (int i = 0; i < N; i++)
        add(fx, i);
    reg_cursor c;
    reg_begin(fx->t);
    assert_int_equal(reg_cursor_open(fx->t, &c, fx->f), REG_OK);
    assert_int_equal(take(fx, &c, N / 2), N / 2);
    next_section(fx, &c, churn);
    while (take(fx, &c, 100) > 0)
        next_section(fx, &c, NULL);
    reg_cursor_close(fx->r, &c);
    reg_end(fx->t);
    for (int i = 0; i < N; i++) {
        if (handed[i] == -1)
            assert_int_equal(fx->seen[i], 0);
        else
            assert_int_equal(fx->seen[i], 1);
    }
    for (int i = N; i < N + 7; i++)
        assert_true(fx->seen[i] <= 1);
}

/* Frees pending in the reaper's record after up to 8 passes (two grace periods need two). */
static unsigned pending_after_reaping(fixture *fx) {
    for (int pass = 0; pass < 8; pass++) {
        reg_reap(fx->r);
        if (fx->r->reaper->rec.n_pending == 0)
            break;
    }
    return fx->r->reaper->rec.n_pending;
}

static void test_paused_cursor_holds_back_no_frees(void **state) {
    fixture *fx = *state;
    for (int i = 0; i < 100; i++)
        add(fx, i);
    reg_cursor c;
    reg_begin(fx->t);
    assert_int_equal(reg_cursor_open(fx->t, &c, fx->f), REG_OK);
    take(fx, &c, 10);
    int before[100];
    for (int i = 0; i < 100; i++)
        before[i] = fx->seen[i];
    reg_cursor_pause(&c);
    reg_end(fx->t);
    /* A paused cursor (a scrape waiting for its client): everything retired is freed. */
    for (int i = 0; i < 50; i++)
        del(fx, i);
    assert_int_equal(pending_after_reaping(fx), 0);
    /* The control: a reader inside a section does hold frees back. */
    reg_thread *stalled = reg_thread_attach(fx->r);
    reg_begin(stalled);
    del(fx, 50);
    assert_true(pending_after_reaping(fx) > 0);
    reg_end(stalled);
    reg_thread_detach(stalled);
    assert_int_equal(pending_after_reaping(fx), 0);
    /* The cursor resumes on a collection made anew and hands out the rest once. */
    reg_begin(fx->t);
    assert_int_equal(reg_cursor_resume(fx->t, &c), REG_OK);
    while (take(fx, &c, 7) > 0)
        next_section(fx, &c, NULL);
    reg_cursor_close(fx->r, &c);
    reg_end(fx->t);
    for (int i = 0; i < 100; i++)
        assert_int_equal(fx->seen[i], before[i] || i > 50 ? 1 : 0);
}

static void test_open_on_removed_family(void **state) {
    fixture *fx = *state;
    add(fx, 1);
    reg_family *f = fx->f;
    reg_begin(fx->t);
    assert_int_equal(reg_family_hold(f), REG_OK); /* keep its memory for the open below */
    reg_end(fx->t);
    assert_int_equal(reg_family_remove(fx->r, "walk_total"), REG_OK);
    reg_cursor c;
    reg_begin(fx->t);
    assert_int_equal(reg_cursor_open(fx->t, &c, f), REG_EGONE);
    reg_end(fx->t);
    reg_cursor_close(fx->r, &c); /* a zeroed cursor: a no-op */
    reg_family_release(fx->r, f);
}

static fixture *hook_fx;

static void remove_seven(struct reg_family *f) {
    (void)f;
    del(hook_fx, 7);
}

/* The second look: a series removed after the collection saw it, before the look, is not in
 * the snapshot (without the look it would be, and with a re-created twin, twice). */
static void test_second_look_drops_series_removed_meanwhile(void **state) {
    fixture *fx = *state;
    for (int i = 0; i < 10; i++)
        add(fx, i);
    hook_fx = fx;
    reg_test_between_looks = remove_seven;
    reg_series **v = NULL;
    size_t cap = 0;
    reg_begin(fx->t);
    long n = reg_family_collect(fx->t, fx->f, &v, &cap);
    reg_test_between_looks = NULL;
    assert_int_equal(n, 9);
    for (long i = 0; i < n; i++) {
        char buf[16];
        assert_true(reg_series_label_value(v[i], 0, buf, sizeof buf) > 0);
        assert_int_not_equal(atoi(buf), 7);
    }
    reg_end(fx->t);
    free(v);
}

/* Collections that walk the set (not the kept view) so far. */
static int walks;

static void count_walk(struct reg_family *f) {
    (void)f;
    walks++;
}

/* A collection large enough to be sorted (reg_family_collect sorts 4096 series and more) is in
 * address order and holds every series once: the sort moves pointers through offsets and the
 * array's own halves, and must give each back whole. One series too big for a slab comes from
 * malloc's heap, far from the slabs: the sort then goes a 4 GiB window at a time, and the
 * view kept of the collection a 4 GiB segment at a time: the next collection takes it. */
static void test_large_collection_in_address_order(void **state) {
    fixture *fx = *state;
    enum { BIG = 5000, LONG = 1500 };
    static char v[LONG + 16];
    const char *vals[] = {v};
    reg_begin(fx->t);
    for (int i = 0; i <= BIG; i++) {
        int k = snprintf(v, sizeof v, "%d", i);
        if (i == BIG) { /* "5000xxx...": past the largest slab block */
            memset(v + k, 'x', LONG - (size_t)k);
            v[LONG] = '\0';
        }
        assert_int_equal(reg_counter_add(fx->t, fx->f, vals, 1), REG_OK);
    }
    reg_series **got = NULL;
    size_t cap = 0;
    long n = reg_family_collect(fx->t, fx->f, &got, &cap);
    assert_int_equal(n, BIG + 1);
    static unsigned char once[BIG + 1];
    memset(once, 0, sizeof once);
    for (long i = 0; i < n; i++) {
        if (i > 0)
            assert_true((uintptr_t)got[i - 1] < (uintptr_t)got[i]);
        static char buf[LONG + 16];
        assert_true(reg_series_label_value(got[i], 0, buf, sizeof buf) > 0);
        once[atoi(buf)]++;
    }
    reg_series **again = NULL;
    size_t cap2 = 0;
    int before = walks;
    reg_test_between_looks = count_walk;
    long n2 = reg_family_collect(fx->t, fx->f, &again, &cap2);
    reg_test_between_looks = NULL;
    reg_end(fx->t);
    assert_int_equal(walks, before); /* the view */
    assert_int_equal(n2, n);
    assert_memory_equal(again, got, (size_t)n * sizeof *got);
    for (int i = 0; i <= BIG; i++)
        assert_int_equal(once[i], 1);
    free(got);
    free(again);
}

#define VIEW_N 5000 /* a family large enough for a kept view (4,096 series and more) */

/* Checks that fx->f's collection holds "0".."n-1" but gone, each once (in address order when
 * large).
 * Returns 1 when it walked the set, 0 when it took the kept view. */
static int collect_checked(fixture *fx, int n, int gone) {
    static unsigned char once[VIEW_N];
    memset(once, 0, sizeof once);
    reg_series **got = NULL;
    size_t cap = 0;
    int before = walks;
    reg_begin(fx->t);
    long k = reg_family_collect(fx->t, fx->f, &got, &cap);
    assert_int_equal(k, gone >= 0 ? n - 1 : n);
    for (long i = 0; i < k; i++) {
        char buf[16];
        assert_true(reg_series_label_value(got[i], 0, buf, sizeof buf) > 0);
        once[atoi(buf)]++;
        if (i > 0 && k >= 4096) /* sorted from 4,096 series on */
            assert_true((uintptr_t)got[i - 1] < (uintptr_t)got[i]);
    }
    reg_end(fx->t);
    free(got);
    for (int i = 0; i < n; i++)
        assert_int_equal(once[i], i != gone);
    return walks != before;
}

/* A large family's collection is kept: the next collection takes it while no series was
 * removed (brought up to date from the creation log after a creation), and walks the set again
 * after a removal. A small family is walked every time. */
static void test_view_kept_until_the_set_changes(void **state) {
    fixture *fx = *state;
    reg_test_between_looks = count_walk;
    for (int i = 0; i < 100; i++)
        add(fx, i);
    assert_true(collect_checked(fx, 100, -1));
    assert_true(collect_checked(fx, 100, -1)); /* small: nothing kept */
    for (int i = 100; i < VIEW_N - 1; i++)
        add(fx, i);
    assert_true(collect_checked(fx, VIEW_N - 1, -1));
    assert_false(collect_checked(fx, VIEW_N - 1, -1)); /* unchanged: the view */
    assert_false(collect_checked(fx, VIEW_N - 1, -1));
    add(fx, 7); /* an update, no creation: the view still holds */
    assert_false(collect_checked(fx, VIEW_N - 1, -1));
    add(fx, VIEW_N - 1); /* a creation: the view is brought up to date from the log */
    assert_false(collect_checked(fx, VIEW_N, -1));
    assert_false(collect_checked(fx, VIEW_N, -1));
    del(fx, 42); /* a removal */
    assert_true(collect_checked(fx, VIEW_N, 42));
    assert_false(collect_checked(fx, VIEW_N, 42));
    reg_test_between_looks = NULL;
}

static pthread_barrier_t published, go; /* the creator and the test, around the publish */

static void pause_after_publish(struct reg_family *f) {
    (void)f;
    pthread_barrier_wait(&published);
    pthread_barrier_wait(&go);
}

static void *create_paused(void *arg) {
    fixture *fx = arg;
    reg_thread *t = reg_thread_attach(fx->r);
    const char *vals[] = {"4999"};
    reg_begin(t);
    int rc = reg_counter_add(t, fx->f, vals, 1);
    reg_end(t);
    reg_thread_detach(t);
    return (void *)(intptr_t)rc;
}

/* How many series fx->f's collection holds, and whether "4999" is one of them (*has). Sets
 * *walked as collect_checked returns. Asserts nothing: it runs while another thread holds
 * the family's mutex, which a failed test's teardown would wait for. */
static long collect_has_last(fixture *fx, int *has, int *walked) {
    reg_series **got = NULL;
    size_t cap = 0;
    int before = walks;
    *has = 0;
    reg_begin(fx->t);
    long k = reg_family_collect(fx->t, fx->f, &got, &cap);
    for (long i = 0; i < k; i++) {
        char buf[16];
        *has += reg_series_label_value(got[i], 0, buf, sizeof buf) > 0 && atoi(buf) == 4999;
    }
    reg_end(fx->t);
    free(got);
    *walked = walks != before;
    return k;
}

/* A series published but not yet counted is in the set: another thread finds and updates it,
 * and a collection that begins after that update must hold it. So a family whose view was
 * kept walks again as soon as a creation is under way, and keeps no view from that walk. */
static void test_view_not_taken_during_a_creation(void **state) {
    fixture *fx = *state;
    for (int i = 0; i < VIEW_N - 1; i++)
        add(fx, i);
    reg_test_between_looks = count_walk;
    assert_true(collect_checked(fx, VIEW_N - 1, -1));
    assert_false(collect_checked(fx, VIEW_N - 1, -1)); /* the view is kept */
    assert_int_equal(pthread_barrier_init(&published, NULL, 2), 0);
    assert_int_equal(pthread_barrier_init(&go, NULL, 2), 0);
    reg_test_after_publish = pause_after_publish;
    pthread_t creator;
    assert_int_equal(pthread_create(&creator, NULL, create_paused, fx), 0);
    pthread_barrier_wait(&published); /* "4999" is in the set; its creation is not over */
    reg_test_after_publish = NULL;
    char v[] = "4999";
    const char *vals[] = {v};
    reg_begin(fx->t);
    int updated = reg_counter_add(fx->t, fx->f, vals, 1); /* found: no lock needed */
    reg_end(fx->t);
    int has1, walked1, has2, walked2;
    long n1 = collect_has_last(fx, &has1, &walked1);
    long n2 = collect_has_last(fx, &has2, &walked2);
    pthread_barrier_wait(&go);
    void *rc;
    pthread_join(creator, &rc);
    assert_int_equal((intptr_t)rc, REG_OK);
    assert_int_equal(updated, REG_OK);
    assert_int_equal(n1, VIEW_N); /* walked, and "4999" is there */
    assert_true(has1 == 1 && walked1);
    assert_int_equal(n2, VIEW_N); /* walked again: no view was kept meanwhile */
    assert_true(has2 == 1 && walked2);
    /* The creation is over: the view kept from before it, brought up to date from the log. */
    assert_false(collect_checked(fx, VIEW_N, -1));
    assert_false(collect_checked(fx, VIEW_N, -1));
    reg_test_between_looks = NULL;
    pthread_barrier_destroy(&published);
    pthread_barrier_destroy(&go);
}

static void create_last(struct reg_family *f) {
    (void)f;
    const char *vals[] = {"4999"};
    reg_test_before_walk = NULL;
    assert_int_equal(reg_counter_add(hook_fx->t, hook_fx->f, vals, 1), REG_OK);
}

/* A series created after a walk read the family's counts, and seen by that walk, is both in
 * the view the walk kept and in the creation log since the view's counts: the collection that
 * brings the view up to date holds it once. */
static void test_view_and_log_overlap(void **state) {
    fixture *fx = *state;
    for (int i = 0; i < VIEW_N - 1; i++)
        add(fx, i);
    hook_fx = fx;
    reg_test_before_walk = create_last;
    reg_test_between_looks = count_walk;
    assert_true(collect_checked(fx, VIEW_N, -1));  /* walked, "4999" made just before */
    assert_false(collect_checked(fx, VIEW_N, -1)); /* the view and the log: once each */
    assert_false(collect_checked(fx, VIEW_N, -1));
    reg_test_between_looks = NULL;
}

/* More creations since the view than the log holds: the collection walks, and keeps a new
 * view. A collection may also bring a view up to date across the log's whole length. */
static void test_log_overrun_walks(void **state) {
    fixture *fx = *state;
    enum { FIRST = VIEW_N - 2 * REG_CREATION_LOG - 1 };
    for (int i = 0; i < FIRST; i++)
        add(fx, i);
    reg_test_between_looks = count_walk;
    assert_true(collect_checked(fx, FIRST, -1));
    for (int i = FIRST; i < FIRST + REG_CREATION_LOG; i++)
        add(fx, i);
    assert_false(collect_checked(fx, FIRST + REG_CREATION_LOG, -1)); /* the log's length */
    for (int i = FIRST + REG_CREATION_LOG; i < VIEW_N; i++)
        add(fx, i);
    assert_true(collect_checked(fx, VIEW_N, -1)); /* one more than the log holds */
    assert_false(collect_checked(fx, VIEW_N, -1));
    reg_test_between_looks = NULL;
}

static void test_replace(void **state) {
    fixture *fx = *state;
    add(fx, 1);
    reg_family_def same = {.name = "walk_total", .type = REG_COUNTER, .nlabels = 1, .labels = LBL};
    reg_family_def changed = same;
    changed.help = "now with help";
    reg_family *f;
    reg_begin(fx->t);
    /* Equal: kept, series and all. */
    assert_int_equal(reg_family_replace(fx->t, &same, &f), REG_OK);
    assert_ptr_equal(f, fx->f);
    assert_int_equal(reg_family_series_count(f), 1);
    /* Changed: a new family under the name; the old one is gone for updaters. */
    assert_int_equal(reg_family_replace(fx->t, &changed, &f), REG_OK);
    assert_ptr_not_equal(f, fx->f);
    assert_ptr_equal(reg_family_find(fx->t, "walk_total"), f);
    assert_int_equal(reg_family_series_count(f), 0);
    assert_int_equal(reg_family_series_count(fx->f), 0);
    const char *vals[] = {"2"};
    assert_int_equal(reg_counter_add(fx->t, fx->f, vals, 1), REG_EGONE);
    assert_int_equal(reg_counter_add(fx->t, f, vals, 1), REG_OK);
    /* A new name: added. Bad definitions: refused. */
    reg_family_def other = same;
    other.name = "other_total";
    reg_family *g;
    assert_int_equal(reg_family_replace(fx->t, &other, &g), REG_OK);
    assert_ptr_equal(reg_family_find(fx->t, "other_total"), g);
    other.name = "0bad";
    assert_int_equal(reg_family_replace(fx->t, &other, &g), REG_EINVAL);
    reg_end(fx->t);
    assert_int_equal(reg_family_total(fx->r), 2);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_walk_across_sections, setup, teardown),
        cmocka_unit_test_setup_teardown(test_removals_between_sections, setup, teardown),
        cmocka_unit_test_setup_teardown(test_paused_cursor_holds_back_no_frees, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_on_removed_family, setup, teardown),
        cmocka_unit_test_setup_teardown(test_second_look_drops_series_removed_meanwhile, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_large_collection_in_address_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_view_kept_until_the_set_changes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_view_not_taken_during_a_creation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_view_and_log_overlap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_log_overrun_walks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replace, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
