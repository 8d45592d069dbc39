/* yaml_tree.h - the YAML node tree the loader walks (internal to config/: not included outside it).
 *
 * cfg_yaml_parse builds a tree of nodes from libyaml's events, with 1-based positions,
 * anchors, aliases (an alias shares its anchored node) and bounded size. cfg_yaml_walk_map
 * visits a mapping's pairs with YAML's `<<` merge keys applied. Problems are reported through
 * a cfg_yaml_report, which also holds the budget of nodes a walk may visit (aliases expanded),
 * so a small file of aliases cannot make the walk take forever.
 */
#ifndef ABACUS_CONFIG_YAML_TREE_H
#define ABACUS_CONFIG_YAML_TREE_H

#include <stddef.h>

#include "config.h"

#define CFG_YAML_MAX_DEPTH 64       /* nesting; the schema needs 6 */
#define CFG_YAML_MAX_NODES 500000   /* nodes built from the file */
#define CFG_YAML_MAX_VISITS 1000000 /* nodes visited by walks, aliases expanded */
#define CFG_YAML_MAX_ERRORS 1000    /* errors reported per load; then one "too many" */
#define CFG_YAML_MAX_MERGE 8        /* nested `<<` merges */

typedef enum { CFG_NODE_SCALAR, CFG_NODE_SEQ, CFG_NODE_MAP } cfg_node_kind;

typedef struct cfg_node cfg_node;
struct cfg_node {
    cfg_node_kind kind;
    int quoted; /* scalar: always a string (quoted, block, or tagged !!str / !) */
    int null;   /* scalar: empty plain, ~, null, or tagged !!null */
    unsigned line, col;
    char *s; /* scalar text, NUL-terminated; len counts NULs written as escapes */
    size_t len;
    cfg_node **kids; /* sequence items, or map keys and values alternating */
    size_t n, cap;
};

/* Every node of one document (aliases share nodes, so the tree owns them in one list). */
typedef struct {
    cfg_node **all;
    size_t n, cap;
} cfg_yaml_tree;

/* Where problems go: positioned errors in `file`, at most CFG_YAML_MAX_ERRORS of them. */
typedef struct {
    const char *file;
    cfg_errors *errs;
    size_t nerr; /* errors added by this load (including those past the cap) */
    long visits; /* walk budget left; -1 once exhausted and reported */
    int oom;     /* an allocation failed (reported once) */
} cfg_yaml_report;

/* A quoted, escaped, truncated copy of a string for messages. */
typedef struct {
    char text[96];
} cfg_quoted;

/* ---- reporting: none of these can fail (an error that cannot be stored is lost) ---------- */

/* An error at line:col; "path: message" when path is non-empty. */
void cfg_yaml_error_at(cfg_yaml_report *r, unsigned line, unsigned col, const char *path,
                       const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* An error at node n (no position when n is NULL). */
void cfg_yaml_error(cfg_yaml_report *r, const cfg_node *n, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* "out of memory", reported once per load. */
void cfg_yaml_oom(cfg_yaml_report *r);
/* Spends one node of the walk budget: 1, or 0 once it is spent (reported once). */
int cfg_yaml_visit(cfg_yaml_report *r);

/* s[0..len) quoted for a message, in out. Returns out's text; cannot fail. */
const char *cfg_quote(cfg_quoted *out, const char *s, size_t len);
const char *cfg_quote_str(cfg_quoted *out, const char *s);
/* What n is, for "expected X, got Y" messages: "a mapping", "null", the quoted text, ...
 * Cannot fail. */
const char *cfg_yaml_describe(const cfg_node *n, cfg_quoted *out);
/* 1 when n is absent or a null scalar. Cannot fail. */
int cfg_yaml_is_null(const cfg_node *n);

/* ---- the tree ------------------------------------------------------------------------- */

/* Parses buf[0..len) into t. Returns 0 with *root set (NULL for an empty document), or -1
 * after reporting a syntax error, a limit (size, depth, a second document), an alias to an
 * anchor not yet complete, or running out of memory. t is freed by cfg_yaml_tree_free
 * either way. */
int cfg_yaml_parse(cfg_yaml_report *r, const char *buf, size_t len, cfg_yaml_tree *t,
                   cfg_node **root);
/* Frees every node of t and empties it. Cannot fail. */
void cfg_yaml_tree_free(cfg_yaml_tree *t);

/* Called for each pair of a mapping: merged is 1 for pairs that came from a `<<` source. */
typedef void (*cfg_yaml_pair_fn)(void *arg, cfg_node *key, cfg_node *val, int merged);

/* Calls fn for each pair of mapping map: its own keys first, in order, then the pairs of its
 * `<<` merge sources (which by YAML's rule never override a key already given: the callback
 * sees merged = 1 and decides). Non-scalar keys and bad merge sources are reported at path;
 * stops when the visit budget is spent. */
void cfg_yaml_walk_map(cfg_yaml_report *r, cfg_node *map, const char *path, cfg_yaml_pair_fn fn,
                       void *arg);

#endif
