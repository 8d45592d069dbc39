/* errors.c - the list of positioned configuration errors (cfg_errors) and how it prints.
 *
 * Ownership contract (relied on by every appender in config/): items is a malloc'd array
 * grown with realloc; each item's file and message are malloc'd strings; cfg_errors_free
 * frees all of them.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

/* Append one error. Returns 0, or -1 when out of memory (the error is then lost). */
int cfg_errors_add_at(cfg_errors *e, const char *file, unsigned line, unsigned column,
                      const char *fmt, ...) {
    if (e->count == e->cap) {
        size_t cap = e->cap ? e->cap * 2 : 8;
        cfg_error *items = realloc(e->items, cap * sizeof *items);
        if (!items)
            return -1;
        e->items = items;
        e->cap = cap;
    }
    va_list ap;
    va_start(ap, fmt);
    char *msg = NULL;
    int n = vasprintf(&msg, fmt, ap);
    va_end(ap);
    if (n < 0)
        return -1;
    char *f = strdup(file ? file : "<config>");
    if (!f) {
        free(msg);
        return -1;
    }
    e->items[e->count++] = (cfg_error){.file = f, .line = line, .column = column, .message = msg};
    return 0;
}

/* Frees every error and resets e to empty. Cannot fail. */
void cfg_errors_free(cfg_errors *e) {
    if (!e)
        return;
    for (size_t i = 0; i < e->count; i++) {
        free(e->items[i].file);
        free(e->items[i].message);
    }
    free(e->items);
    e->items = NULL;
    e->count = e->cap = 0;
}

/* Prints "file:line:column: message" (or "file: message" without a position), one per line.
 * Write errors on f are ignored. */
void cfg_errors_print(const cfg_errors *e, void *stdio_file) {
    FILE *f = stdio_file;
    for (size_t i = 0; e && i < e->count; i++) {
        const cfg_error *x = &e->items[i];
        const char *file = x->file ? x->file : "<config>";
        if (x->line)
            fprintf(f, "%s:%u:%u: %s\n", file, x->line, x->column, x->message);
        else
            fprintf(f, "%s: %s\n", file, x->message);
    }
}
