/* yaml.c - the YAML node tree of the loader: built from libyaml's events, walked with `<<`
 * merge keys, with its bounds and its error reporting (see yaml_tree.h; the header is not named
 * yaml.h, which would shadow libyaml's <yaml.h> on the include path).
 *
 * An anchor is registered when its node is complete, so an alias never points into its own
 * ancestors and the tree stays acyclic; aliases share the anchored node. Nesting depth, node
 * count and (in the walk) nodes visited with aliases expanded are bounded.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "yaml_tree.h"

/* ---- reporting ---------------------------------------------------------------------------- */

static void report_v(cfg_yaml_report *r, unsigned line, unsigned col, const char *path,
                     const char *fmt, va_list ap) {
    if (r->nerr > CFG_YAML_MAX_ERRORS)
        return;
    if (r->nerr++ == CFG_YAML_MAX_ERRORS) {
        cfg_errors_add_at(r->errs, r->file, 0, 0, "too many errors; stopped after %d",
                          CFG_YAML_MAX_ERRORS);
        return;
    }
    char msg[1024];
    vsnprintf(msg, sizeof msg, fmt, ap);
    if (path && *path)
        cfg_errors_add_at(r->errs, r->file, line, col, "%s: %s", path, msg);
    else
        cfg_errors_add_at(r->errs, r->file, line, col, "%s", msg);
}

/* Cannot fail (an error that cannot be stored is lost). */
void cfg_yaml_error_at(cfg_yaml_report *r, unsigned line, unsigned col, const char *path,
                       const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    report_v(r, line, col, path, fmt, ap);
    va_end(ap);
}

/* Cannot fail (an error that cannot be stored is lost). */
void cfg_yaml_error(cfg_yaml_report *r, const cfg_node *n, const char *path, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    report_v(r, n ? n->line : 0, n ? n->col : 0, path, fmt, ap);
    va_end(ap);
}

/* Cannot fail. */
void cfg_yaml_oom(cfg_yaml_report *r) {
    if (!r->oom)
        cfg_yaml_error_at(r, 0, 0, NULL, "out of memory");
    r->oom = 1;
}

/* 1, or 0 once the budget is spent (reported once). */
int cfg_yaml_visit(cfg_yaml_report *r) {
    if (r->visits > 0) {
        r->visits--;
        return 1;
    }
    if (r->visits == 0) {
        cfg_yaml_error_at(r, 0, 0, NULL,
                          "document too large: more than %d nodes with aliases expanded",
                          CFG_YAML_MAX_VISITS);
        r->visits = -1;
    }
    return 0;
}

/* Cannot fail: escapes quotes, backslashes and control bytes; cuts after about 60 bytes at a
 * character boundary so a message stays one readable line. */
const char *cfg_quote(cfg_quoted *out, const char *s, size_t len) {
    char *b = out->text;
    size_t o = 0;
    b[o++] = '"';
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (o >= 60 && (ch & 0xC0) != 0x80) {
            memcpy(b + o, "...\"", 5);
            return b;
        }
        if (ch == '"' || ch == '\\') {
            b[o++] = '\\';
            b[o++] = (char)ch;
        } else if (ch < 0x20 || ch == 0x7f) {
            o += (size_t)snprintf(b + o, 5, "\\x%02x", ch);
        } else {
            b[o++] = (char)ch;
        }
    }
    b[o++] = '"';
    b[o] = 0;
    return b;
}

/* Cannot fail. */
const char *cfg_quote_str(cfg_quoted *out, const char *s) {
    return cfg_quote(out, s, strlen(s));
}

/* Cannot fail. */
const char *cfg_yaml_describe(const cfg_node *n, cfg_quoted *out) {
    if (n->kind == CFG_NODE_MAP)
        return "a mapping";
    if (n->kind == CFG_NODE_SEQ)
        return "a sequence";
    if (n->null)
        return "null";
    return cfg_quote(out, n->s, n->len);
}

/* Cannot fail. */
int cfg_yaml_is_null(const cfg_node *n) {
    return !n || (n->kind == CFG_NODE_SCALAR && n->null);
}

/* ---- building the tree -------------------------------------------------------------------- */

/* Cannot fail. */
void cfg_yaml_tree_free(cfg_yaml_tree *t) {
    for (size_t i = 0; i < t->n; i++) {
        free(t->all[i]->s);
        free(t->all[i]->kids);
        free(t->all[i]);
    }
    free(t->all);
    t->all = NULL;
    t->n = t->cap = 0;
}

/* YAML 1.2 core schema nulls, for untagged plain scalars. */
static int is_null_text(const char *s, size_t n) {
    return n == 0 || (n == 1 && s[0] == '~') ||
           (n == 4 && (!memcmp(s, "null", 4) || !memcmp(s, "Null", 4) || !memcmp(s, "NULL", 4)));
}

/* Reports libyaml's error with the best position it gives. Cannot fail. */
static void report_syntax(cfg_yaml_report *r, const yaml_parser_t *p, const char *buf, size_t len) {
    if (p->error == YAML_MEMORY_ERROR) {
        cfg_yaml_oom(r);
        return;
    }
    const char *problem = p->problem ? p->problem : "unknown error";
    if (p->error == YAML_READER_ERROR) {
        /* The reader reports a byte offset; count lines up to it. */
        size_t off = p->problem_offset < len ? p->problem_offset : len;
        unsigned line = 1, col = 1;
        for (size_t i = 0; i < off; i++) {
            if (buf[i] == '\n') {
                line++;
                col = 1;
            } else {
                col++;
            }
        }
        if (p->problem_value != -1)
            cfg_yaml_error_at(r, line, col, NULL, "invalid input: %s (byte 0x%02x)", problem,
                              (unsigned)p->problem_value & 0xffu);
        else
            cfg_yaml_error_at(r, line, col, NULL, "invalid input: %s", problem);
        return;
    }
    unsigned line = (unsigned)p->problem_mark.line + 1, col = (unsigned)p->problem_mark.column + 1;
    if (p->context)
        cfg_yaml_error_at(r, line, col, NULL, "syntax error: %s (%s at %u:%u)", problem, p->context,
                          (unsigned)p->context_mark.line + 1, (unsigned)p->context_mark.column + 1);
    else
        cfg_yaml_error_at(r, line, col, NULL, "syntax error: %s", problem);
}

/* The state of one parse: the open containers and the anchors defined so far. */
typedef struct {
    cfg_yaml_report *report;
    cfg_yaml_tree *tree;
    cfg_node *root;
    reg_strmap *anchors; /* name (copied) -> node */
    cfg_node *open[CFG_YAML_MAX_DEPTH];
    char *open_anchor[CFG_YAML_MAX_DEPTH]; /* registered when its container ends */
    int depth, docs;
} parse_state;

/* A new node at mark m. NULL after reporting the node limit or running out of memory. */
static cfg_node *new_node(parse_state *ps, cfg_node_kind kind, yaml_mark_t m) {
    cfg_yaml_tree *t = ps->tree;
    if (t->n == CFG_YAML_MAX_NODES) {
        cfg_yaml_error_at(ps->report, (unsigned)m.line + 1, (unsigned)m.column + 1, NULL,
                          "document too large: more than %d nodes", CFG_YAML_MAX_NODES);
        return NULL;
    }
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 64;
        cfg_node **all = realloc(t->all, cap * sizeof *all);
        if (!all) {
            cfg_yaml_oom(ps->report);
            return NULL;
        }
        t->all = all;
        t->cap = cap;
    }
    cfg_node *n = calloc(1, sizeof *n);
    if (!n) {
        cfg_yaml_oom(ps->report);
        return NULL;
    }
    n->kind = kind;
    n->line = (unsigned)m.line + 1;
    n->col = (unsigned)m.column + 1;
    t->all[t->n++] = n;
    return n;
}

/* 0, or -1 when out of memory (reported). */
static int add_kid(parse_state *ps, cfg_node *parent, cfg_node *kid) {
    if (parent->n == parent->cap) {
        size_t cap = parent->cap ? parent->cap * 2 : 4;
        cfg_node **k = realloc(parent->kids, cap * sizeof *k);
        if (!k) {
            cfg_yaml_oom(ps->report);
            return -1;
        }
        parent->kids = k;
        parent->cap = cap;
    }
    parent->kids[parent->n++] = kid;
    return 0;
}

/* 0, or -1 when out of memory (reported). */
static int define_anchor(parse_state *ps, const char *name, cfg_node *n) {
    if (reg_strmap_put(ps->anchors, name, strlen(name), n) != REG_OK) {
        cfg_yaml_oom(ps->report);
        return -1;
    }
    return 0;
}

/* The node of an alias. NULL after reporting an anchor not (yet) complete. */
static cfg_node *on_alias(parse_state *ps, const yaml_event_t *ev) {
    const char *a = (const char *)ev->data.alias.anchor;
    cfg_node *n = reg_strmap_get(ps->anchors, a, strlen(a));
    if (!n) {
        cfg_quoted b;
        yaml_mark_t m = ev->start_mark;
        cfg_yaml_error_at(ps->report, (unsigned)m.line + 1, (unsigned)m.column + 1, NULL,
                          "undefined alias %s (an anchor must be complete before its aliases)",
                          cfg_quote_str(&b, a));
    }
    return n;
}

/* A scalar node; its text and anchor are taken over from the event (*anchor: to free). NULL
 * after reporting. */
static cfg_node *on_scalar(parse_state *ps, yaml_event_t *ev, char **anchor) {
    cfg_node *n = new_node(ps, CFG_NODE_SCALAR, ev->start_mark);
    if (!n)
        return NULL;
    n->s = (char *)ev->data.scalar.value;
    n->len = ev->data.scalar.length;
    ev->data.scalar.value = NULL;
    const char *tag = (const char *)ev->data.scalar.tag;
    int plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
    n->quoted = !plain || (tag && (!strcmp(tag, YAML_STR_TAG) || !strcmp(tag, "!")));
    n->null = (tag && !strcmp(tag, YAML_NULL_TAG)) || (plain && !tag && is_null_text(n->s, n->len));
    *anchor = (char *)ev->data.scalar.anchor;
    ev->data.scalar.anchor = NULL;
    return n;
}

/* A sequence or mapping node; its anchor is taken over from the event. NULL after reporting. */
static cfg_node *on_container_start(parse_state *ps, yaml_event_t *ev, char **anchor) {
    int seq = ev->type == YAML_SEQUENCE_START_EVENT;
    cfg_node *n = new_node(ps, seq ? CFG_NODE_SEQ : CFG_NODE_MAP, ev->start_mark);
    if (!n)
        return NULL;
    yaml_char_t **a = seq ? &ev->data.sequence_start.anchor : &ev->data.mapping_start.anchor;
    *anchor = (char *)*a;
    *a = NULL;
    return n;
}

/* Closes the innermost container and registers its anchor now that it is complete. 0, or -1
 * when out of memory (reported). */
static int on_container_end(parse_state *ps) {
    if (ps->depth == 0)
        return 0;
    ps->depth--;
    char *a = ps->open_anchor[ps->depth];
    if (!a)
        return 0;
    int rc = define_anchor(ps, a, ps->open[ps->depth]);
    free(a);
    return rc;
}

/* Links a new node into its parent (or makes it the root) and opens it when it is a
 * container; a scalar's anchor is registered at once. Takes *anchor. 0, or -1 after
 * reporting (nesting too deep, out of memory). */
static int place_node(parse_state *ps, cfg_node *n, int opens, char **anchor) {
    if (ps->depth == 0)
        ps->root = n;
    else if (add_kid(ps, ps->open[ps->depth - 1], n))
        return -1;
    if (opens) {
        if (ps->depth == CFG_YAML_MAX_DEPTH) {
            cfg_yaml_error_at(ps->report, n->line, n->col, NULL, "nesting deeper than %d levels",
                              CFG_YAML_MAX_DEPTH);
            return -1;
        }
        ps->open[ps->depth] = n;
        ps->open_anchor[ps->depth++] = *anchor;
        *anchor = NULL;
        return 0;
    }
    return *anchor ? define_anchor(ps, *anchor, n) : 0;
}

/* Handles one event. 1 to go on, 0 at the end of the stream, -1 after reporting an error. */
static int on_event(parse_state *ps, yaml_event_t *ev) {
    cfg_node *n = NULL;
    char *anchor = NULL;
    int opens = 0, rc = 1;
    switch (ev->type) {
    case YAML_STREAM_END_EVENT:
        return 0;
    case YAML_DOCUMENT_START_EVENT:
        if (++ps->docs > 1) {
            cfg_yaml_error_at(ps->report, (unsigned)ev->start_mark.line + 1,
                              (unsigned)ev->start_mark.column + 1, NULL,
                              "only one YAML document is allowed");
            return -1;
        }
        return 1;
    case YAML_ALIAS_EVENT:
        if (!(n = on_alias(ps, ev)))
            return -1;
        break;
    case YAML_SCALAR_EVENT:
        if (!(n = on_scalar(ps, ev, &anchor)))
            return -1;
        break;
    case YAML_SEQUENCE_START_EVENT:
    case YAML_MAPPING_START_EVENT:
        if (!(n = on_container_start(ps, ev, &anchor)))
            return -1;
        opens = 1;
        break;
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT:
        return on_container_end(ps) ? -1 : 1;
    default:
        return 1;
    }
    if (place_node(ps, n, opens, &anchor))
        rc = -1;
    free(anchor);
    return rc;
}

/* 0 with *root set (NULL for an empty document), or -1 after reporting. */
int cfg_yaml_parse(cfg_yaml_report *r, const char *buf, size_t len, cfg_yaml_tree *t,
                   cfg_node **root) {
    yaml_parser_t p;
    *root = NULL;
    parse_state ps = {.report = r, .tree = t, .anchors = reg_strmap_create(REG_STRMAP_COPY)};
    if (!ps.anchors || !yaml_parser_initialize(&p)) {
        reg_strmap_free(ps.anchors);
        cfg_yaml_oom(r);
        return -1;
    }
    yaml_parser_set_input_string(&p, (const unsigned char *)buf, len);
    int rc;
    do {
        yaml_event_t ev;
        if (!yaml_parser_parse(&p, &ev)) {
            report_syntax(r, &p, buf, len);
            rc = -1;
            break;
        }
        rc = on_event(&ps, &ev);
        yaml_event_delete(&ev);
    } while (rc > 0);
    while (ps.depth > 0)
        free(ps.open_anchor[--ps.depth]);
    reg_strmap_free(ps.anchors);
    yaml_parser_delete(&p);
    if (rc < 0)
        return -1;
    *root = ps.root;
    return 0;
}

/* ---- walking mappings (with `<<` merge keys) ---------------------------------------------- */

static int is_merge_key(const cfg_node *k) {
    return k->kind == CFG_NODE_SCALAR && !k->quoted && k->len == 2 && k->s[0] == '<' &&
           k->s[1] == '<';
}

static void walk_map(cfg_yaml_report *r, cfg_node *n, const char *path, int merged, int depth,
                     cfg_yaml_pair_fn fn, void *arg);

/* The pairs of one `<<` source: a mapping or a sequence of mappings. */
static void walk_merge_source(cfg_yaml_report *r, cfg_node *v, const char *path, int depth,
                              cfg_yaml_pair_fn fn, void *arg) {
    if (v->kind == CFG_NODE_MAP) {
        walk_map(r, v, path, 1, depth + 1, fn, arg);
    } else if (v->kind == CFG_NODE_SEQ) {
        for (size_t j = 0; j < v->n; j++) {
            if (v->kids[j]->kind == CFG_NODE_MAP)
                walk_map(r, v->kids[j], path, 1, depth + 1, fn, arg);
            else
                cfg_yaml_error(r, v->kids[j], path, "a merge (<<) takes mappings");
        }
    } else {
        cfg_yaml_error(r, v, path, "a merge (<<) takes a mapping or a sequence of mappings");
    }
}

static void walk_map(cfg_yaml_report *r, cfg_node *n, const char *path, int merged, int depth,
                     cfg_yaml_pair_fn fn, void *arg) {
    for (size_t i = 0; i + 1 < n->n; i += 2) {
        cfg_node *k = n->kids[i];
        if (!cfg_yaml_visit(r))
            return;
        if (is_merge_key(k))
            continue;
        if (k->kind != CFG_NODE_SCALAR) {
            cfg_yaml_error(r, k, path, "mapping keys must be strings, got %s",
                           k->kind == CFG_NODE_MAP ? "a mapping" : "a sequence");
            continue;
        }
        fn(arg, k, n->kids[i + 1], merged);
    }
    for (size_t i = 0; i + 1 < n->n; i += 2) {
        cfg_node *k = n->kids[i];
        if (!is_merge_key(k))
            continue;
        if (depth >= CFG_YAML_MAX_MERGE) {
            cfg_yaml_error(r, k, path, "merges (<<) nested deeper than %d levels",
                           CFG_YAML_MAX_MERGE);
            return;
        }
        walk_merge_source(r, n->kids[i + 1], path, depth, fn, arg);
    }
}

/* Cannot fail (problems are reported). */
void cfg_yaml_walk_map(cfg_yaml_report *r, cfg_node *map, const char *path, cfg_yaml_pair_fn fn,
                       void *arg) {
    walk_map(r, map, path, 0, 0, fn, arg);
}
