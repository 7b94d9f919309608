/* prom-text.h - metrics in the Prometheus text exposition format (0.0.4),
 * as node_exporter's textfile collector reads them.
 *
 * The format wants every sample of a metric under one HELP and TYPE
 * header, so samples are gathered per metric and written at the end, in
 * the order the metrics were first declared.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct PromText PromText;

typedef enum {
        PROM_COUNTER,
        PROM_GAUGE,
        PROM_HISTOGRAM, /* samples through prom_text_add_histogram() */
} PromType;

PromText *prom_text_new(void);
void prom_text_free(PromText *prom);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(PromText, prom_text_free)

/* Declares metric @name ([a-z_:][a-z0-9_:]*, a counter ending in _total)
 * with its help text; declaring it again changes nothing. */
void prom_text_declare(PromText *prom, const char *name, PromType type, const char *help);

/* Whether a sample of @name with these labels was added already. */
gboolean prom_text_has(PromText *prom, const char *name, const char *const *labels);

/* Adds one sample of the declared metric @name. @labels is NULL or a
 * NULL-terminated list of label names and values, alternating; values may
 * hold any bytes (not UTF-8: read as Latin-1). A sample whose labels
 * repeat an earlier one of the same metric is dropped: the format allows
 * each series once. */
void prom_text_add(PromText *prom, const char *name, const char *const *labels, double value);

/* Adds one series of the declared histogram @name: NAME_bucket for each
 * upper bound in @bounds (the last may be INFINITY: "+Inf") with its
 * cumulative count, NAME_sum and NAME_count (the last cumulative count). */
void prom_text_add_histogram(PromText *prom, const char *name, const char *const *labels,
                             const double *bounds, const guint64 *cumulative, guint n,
                             double sum);

/* The whole exposition, '\n' terminated. */
char *prom_text_render(const PromText *prom);

G_END_DECLS
