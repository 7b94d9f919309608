/* prom-text.c - gathering and writing Prometheus text exposition. */
#include "prom-text.h"

#include <math.h>
#include <string.h>

typedef struct {
        char *name;
        PromType type;
        char *help;
        GString *samples;
        GHashTable *series; /* label text of each sample written, to refuse repeats */
} PromMetric;

struct PromText {
        GPtrArray *metrics; /* of PromMetric*, in declaration order */
};

static void prom_metric_free(gpointer data)
{
        PromMetric *metric = data;
        g_free(metric->name);
        g_free(metric->help);
        g_string_free(metric->samples, TRUE);
        g_hash_table_unref(metric->series);
        g_free(metric);
}

PromText *prom_text_new(void)
{
        PromText *prom = g_new0(PromText, 1);
        prom->metrics = g_ptr_array_new_with_free_func(prom_metric_free);
        return prom;
}

void prom_text_free(PromText *prom)
{
        if (prom == NULL)
                return;
        g_ptr_array_unref(prom->metrics);
        g_free(prom);
}

static PromMetric *prom_text_find(const PromText *prom, const char *name)
{
        for (guint i = 0; i < prom->metrics->len; i++) {
                PromMetric *metric = prom->metrics->pdata[i];
                if (strcmp(metric->name, name) == 0)
                        return metric;
        }
        return NULL;
}

void prom_text_declare(PromText *prom, const char *name, PromType type, const char *help)
{
        if (prom_text_find(prom, name))
                return;
        PromMetric *metric = g_new0(PromMetric, 1);
        metric->name = g_strdup(name);
        metric->type = type;
        metric->help = g_strdup(help);
        metric->samples = g_string_new(NULL);
        metric->series = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
        g_ptr_array_add(prom->metrics, metric);
}

/* Help text escapes backslash and newline; label values also '"'. */
static void prom_append_escaped(GString *out, const char *text, gboolean quote)
{
        g_autofree char *converted = NULL;
        if (!g_utf8_validate(text, -1, NULL)) {
                converted = g_convert(text, -1, "UTF-8", "ISO-8859-1", NULL, NULL, NULL);
                text = converted ? converted : "";
        }
        for (const char *p = text; *p; p++) {
                if (*p == '\\')
                        g_string_append(out, "\\\\");
                else if (*p == '\n')
                        g_string_append(out, "\\n");
                else if (*p == '"' && quote)
                        g_string_append(out, "\\\"");
                else
                        g_string_append_c(out, *p);
        }
}

static char *prom_label_text(const char *const *labels)
{
        GString *out = g_string_new(NULL);
        for (const char *const *label = labels; label && label[0] && label[1]; label += 2) {
                g_string_append(out, out->len ? "," : "{");
                g_string_append_printf(out, "%s=\"", label[0]);
                prom_append_escaped(out, label[1], TRUE);
                g_string_append_c(out, '"');
        }
        if (out->len)
                g_string_append_c(out, '}');
        return g_string_free(out, FALSE);
}

gboolean prom_text_has(PromText *prom, const char *name, const char *const *labels)
{
        PromMetric *metric = prom_text_find(prom, name);
        g_autofree char *text = prom_label_text(labels);
        return metric && g_hash_table_contains(metric->series, text);
}

void prom_text_add(PromText *prom, const char *name, const char *const *labels, double value)
{
        PromMetric *metric = prom_text_find(prom, name);
        g_return_if_fail(metric != NULL);
        char *text = prom_label_text(labels);
        if (!g_hash_table_add(metric->series, text))
                return;
        char number[G_ASCII_DTOSTR_BUF_SIZE];
        if (isnan(value))
                g_strlcpy(number, "NaN", sizeof(number));
        else
                g_ascii_dtostr(number, sizeof(number), value);
        g_string_append_printf(metric->samples, "%s%s %s\n", metric->name, text, number);
}

void prom_text_add_histogram(PromText *prom, const char *name, const char *const *labels,
                             const double *bounds, const guint64 *cumulative, guint n,
                             double sum)
{
        PromMetric *metric = prom_text_find(prom, name);
        g_return_if_fail(metric != NULL && n > 0);
        g_autofree char *text = prom_label_text(labels);
        if (!g_hash_table_add(metric->series, g_strdup(text)))
                return;
        g_autoptr(GPtrArray) with_le = g_ptr_array_new();
        for (const char *const *label = labels; label && *label; label++)
                g_ptr_array_add(with_le, (gpointer)*label);
        g_ptr_array_add(with_le, (gpointer)"le");
        guint le_value = with_le->len;
        g_ptr_array_add(with_le, NULL);
        g_ptr_array_add(with_le, NULL);
        for (guint i = 0; i < n; i++) {
                char bound[G_ASCII_DTOSTR_BUF_SIZE];
                if (isinf(bounds[i]))
                        g_strlcpy(bound, "+Inf", sizeof(bound));
                else
                        g_ascii_formatd(bound, sizeof(bound), "%g", bounds[i]);
                with_le->pdata[le_value] = bound;
                g_autofree char *bucket = prom_label_text((const char *const *)with_le->pdata);
                g_string_append_printf(metric->samples, "%s_bucket%s %" G_GUINT64_FORMAT "\n",
                                       metric->name, bucket, cumulative[i]);
        }
        char number[G_ASCII_DTOSTR_BUF_SIZE];
        g_ascii_formatd(number, sizeof(number), "%.6g", sum);
        g_string_append_printf(metric->samples, "%s_sum%s %s\n", metric->name, text, number);
        g_string_append_printf(metric->samples, "%s_count%s %" G_GUINT64_FORMAT "\n",
                               metric->name, text, cumulative[n - 1]);
}

char *prom_text_render(const PromText *prom)
{
        GString *out = g_string_new(NULL);
        for (guint i = 0; i < prom->metrics->len; i++) {
                const PromMetric *metric = prom->metrics->pdata[i];
                if (metric->samples->len == 0)
                        continue;
                g_string_append_printf(out, "# HELP %s ", metric->name);
                prom_append_escaped(out, metric->help, FALSE);
                g_string_append_printf(out, "\n# TYPE %s %s\n", metric->name,
                                       metric->type == PROM_COUNTER     ? "counter"
                                       : metric->type == PROM_HISTOGRAM ? "histogram"
                                                                        : "gauge");
                g_string_append_len(out, metric->samples->str, (gssize)metric->samples->len);
        }
        return g_string_free(out, FALSE);
}
