/* status-line.c - writes and parses status lines (see status-line.h).
 *
 * Invariant of a PoStatusLine: keys are valid and unique, words and values
 * are plain C strings (decoded); encoding happens only on output, so a
 * parsed line and a built one compare equal field by field.
 */
#include "status-line.h"
#include "po-error.h"

#include <stdio.h>
#include <string.h>

struct PoStatusLine {
        GPtrArray *words;  /* of char* */
        GPtrArray *keys;   /* of char*, parallel to values */
        GPtrArray *values; /* of char* */
};

PoStatusLine *po_status_line_new(void)
{
        PoStatusLine *line = g_new0(PoStatusLine, 1);
        line->words = g_ptr_array_new_with_free_func(g_free);
        line->keys = g_ptr_array_new_with_free_func(g_free);
        line->values = g_ptr_array_new_with_free_func(g_free);
        return line;
}

void po_status_line_free(PoStatusLine *line)
{
        if (line == NULL)
                return;
        g_ptr_array_unref(line->words);
        g_ptr_array_unref(line->keys);
        g_ptr_array_unref(line->values);
        g_free(line);
}

static bool status_key_char(char c)
{
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
}

static bool status_key_valid(const char *key, gsize len)
{
        if (len == 0)
                return false;
        for (gsize i = 0; i < len; i++)
                if (!status_key_char(key[i]))
                        return false;
        return true;
}

/* Bytes written as themselves: printable ASCII but the three separators. */
static bool status_plain_char(unsigned char c)
{
        return c > ' ' && c < 0x7F && c != '%' && c != '=';
}

void po_status_line_add_word(PoStatusLine *line, const char *word)
{
        g_return_if_fail(line != NULL && word != NULL);
        g_ptr_array_add(line->words, g_strdup(word));
}

static gint status_field_index(const PoStatusLine *line, const char *key)
{
        for (guint i = 0; i < line->keys->len; i++)
                if (strcmp(line->keys->pdata[i], key) == 0)
                        return (gint)i;
        return -1;
}

static void status_set_field(PoStatusLine *line, const char *key, char *value)
{
        gint at = status_field_index(line, key);
        if (at >= 0) {
                g_free(line->values->pdata[at]);
                line->values->pdata[at] = value;
                return;
        }
        g_ptr_array_add(line->keys, g_strdup(key));
        g_ptr_array_add(line->values, value);
}

void po_status_line_add_field(PoStatusLine *line, const char *key, const char *value)
{
        g_return_if_fail(line != NULL && key != NULL && value != NULL);
        g_return_if_fail(status_key_valid(key, strlen(key)));
        status_set_field(line, key, g_strdup(value));
}

void po_status_line_add_field_printf(PoStatusLine *line, const char *key, const char *format, ...)
{
        g_return_if_fail(line != NULL && key != NULL && format != NULL);
        g_return_if_fail(status_key_valid(key, strlen(key)));
        va_list args;
        va_start(args, format);
        char *value = g_strdup_vprintf(format, args);
        va_end(args);
        status_set_field(line, key, value);
}

static void status_append_encoded(GString *out, const char *text, bool empty_as_escape)
{
        if (text[0] == '\0' && empty_as_escape) {
                g_string_append(out, "%00");
                return;
        }
        static const char hex[] = "0123456789ABCDEF";
        const unsigned char *p = (const unsigned char *)text;
        while (*p) {
                /* A run of bytes written as themselves, then one escaped. */
                const unsigned char *run = p;
                while (*p && status_plain_char(*p))
                        p++;
                g_string_append_len(out, (const char *)run, (gssize)(p - run));
                if (!*p)
                        break;
                char escaped[3] = {'%', hex[*p >> 4], hex[*p & 0xF]};
                g_string_append_len(out, escaped, 3);
                p++;
        }
}

/* A word or field starts a line or follows the one before after a space. */
static void status_separate(GString *out, bool first)
{
        if (!first)
                g_string_append_c(out, ' ');
}

static void status_write_field(GString *out, bool first, const char *key, const char *value)
{
        status_separate(out, first);
        g_string_append(out, key);
        g_string_append_c(out, '=');
        status_append_encoded(out, value, false);
}

/* Whether what @out holds ends where a line starts. */
static bool status_at_line_start(const GString *out)
{
        return out->len == 0 || out->str[out->len - 1] == '\n';
}

void po_status_write_word(GString *out, const char *word)
{
        g_return_if_fail(out != NULL && word != NULL);
        status_separate(out, status_at_line_start(out));
        status_append_encoded(out, word, true);
}

void po_status_write_field(GString *out, const char *key, const char *value)
{
        g_return_if_fail(out != NULL && key != NULL && value != NULL);
        g_return_if_fail(status_key_valid(key, strlen(key)));
        status_write_field(out, status_at_line_start(out), key, value);
}

/* @value in decimal, at the end of @buf: written per request (the
 * trail's time and pid), so without a format string. */
#define STATUS_UINT64_DIGITS_MAX 21
static const char *status_uint64_digits(guint64 value, char buf[STATUS_UINT64_DIGITS_MAX])
{
        char *p = buf + STATUS_UINT64_DIGITS_MAX - 1;
        *p = '\0';
        do {
                *--p = (char)('0' + value % 10);
                value /= 10;
        } while (value > 0);
        return p;
}

void po_status_write_word_uint64(GString *out, guint64 value)
{
        char buf[STATUS_UINT64_DIGITS_MAX];
        po_status_write_word(out, status_uint64_digits(value, buf));
}

void po_status_write_field_uint64(GString *out, const char *key, guint64 value)
{
        char buf[STATUS_UINT64_DIGITS_MAX];
        po_status_write_field(out, key, status_uint64_digits(value, buf));
}

void po_status_line_append_to(const PoStatusLine *line, GString *out)
{
        g_return_if_fail(line != NULL && out != NULL);
        bool first = true;
        for (guint i = 0; i < line->words->len; i++, first = false) {
                status_separate(out, first);
                status_append_encoded(out, line->words->pdata[i], true);
        }
        for (guint i = 0; i < line->keys->len; i++, first = false)
                status_write_field(out, first, line->keys->pdata[i], line->values->pdata[i]);
        g_string_append_c(out, '\n');
}

guint po_status_line_n_words(const PoStatusLine *line)
{
        return line->words->len;
}

const char *po_status_line_word(const PoStatusLine *line, guint index)
{
        return index < line->words->len ? line->words->pdata[index] : NULL;
}

guint po_status_line_n_fields(const PoStatusLine *line)
{
        return line->keys->len;
}

const char *po_status_line_field_key(const PoStatusLine *line, guint index)
{
        return index < line->keys->len ? line->keys->pdata[index] : NULL;
}

const char *po_status_line_field_value(const PoStatusLine *line, guint index)
{
        return index < line->values->len ? line->values->pdata[index] : NULL;
}

const char *po_status_line_field(const PoStatusLine *line, const char *key)
{
        gint at = status_field_index(line, key);
        return at >= 0 ? line->values->pdata[at] : NULL;
}

bool po_status_line_field_uint64(const PoStatusLine *line, const char *key, guint64 *out)
{
        const char *value = po_status_line_field(line, key);
        if (value == NULL || !g_ascii_isdigit(value[0]))
                return false;
        char *end = NULL;
        guint64 number = g_ascii_strtoull(value, &end, 10);
        if (*end != '\0')
                return false;
        *out = number;
        return true;
}

static bool status_strings_equal(const GPtrArray *a, const GPtrArray *b)
{
        if (a->len != b->len)
                return false;
        for (guint i = 0; i < a->len; i++)
                if (strcmp(a->pdata[i], b->pdata[i]) != 0)
                        return false;
        return true;
}

bool po_status_line_equal(const PoStatusLine *a, const PoStatusLine *b)
{
        return status_strings_equal(a->words, b->words) && status_strings_equal(a->keys, b->keys) &&
               status_strings_equal(a->values, b->values);
}

bool po_status_line_as_lease(const PoStatusLine *line, PoStatusLease *out)
{
        if (line->words->len < 3)
                return false;
        const char *state = line->words->pdata[2];
        bool held = strcmp(state, PO_STATUS_STATE_HELD) == 0;
        if (!held && strcmp(state, PO_STATUS_STATE_FREE) != 0)
                return false;
        const char *postoffice = po_status_line_field(line, PO_STATUS_FIELD_POSTOFFICE);
        *out = (PoStatusLease){
                .kind = line->words->pdata[0],
                .name = line->words->pdata[1],
                .held = held,
                .postoffice = postoffice ? postoffice : PO_STATUS_PATH_ROOT,
        };
        return true;
}

/* --- parsing ----------------------------------------------------------- */

typedef struct {
        const char *origin;
        unsigned line;
        GError **error;
} StatusParser;

static bool status_fail(const StatusParser *parser, const char *format, ...) G_GNUC_PRINTF(2, 3);

static bool status_fail(const StatusParser *parser, const char *format, ...)
{
        va_list args;
        va_start(args, format);
        g_autofree char *reason = g_strdup_vprintf(format, args);
        va_end(args);
        g_set_error(parser->error, PO_FORMAT_ERROR, PO_FORMAT_ERROR_CORRUPT, "%s: line %u: %s",
                    parser->origin, parser->line, reason);
        return false;
}

/* Decodes @len bytes of an encoded word or value; NULL on a bad escape or
 * an unencoded byte. "%00" alone is the empty string, anywhere else a NUL
 * would cut the string short and is refused. */
static char *status_decode(const StatusParser *parser, const char *text, gsize len)
{
        if (len == 3 && memcmp(text, "%00", 3) == 0)
                return g_strdup("");
        g_autoptr(GString) out = g_string_sized_new(len);
        for (gsize i = 0; i < len; i++) {
                unsigned char c = (unsigned char)text[i];
                if (c == '%') {
                        int high = i + 2 < len ? g_ascii_xdigit_value(text[i + 1]) : -1;
                        int low = high >= 0 ? g_ascii_xdigit_value(text[i + 2]) : -1;
                        if (low < 0) {
                                status_fail(parser, "bad percent escape at byte %" G_GSIZE_FORMAT
                                            " of \"%.*s\"", i, (int)MIN(len, 64), text);
                                return NULL;
                        }
                        if (high == 0 && low == 0) {
                                status_fail(parser, "%%00 (a NUL byte) inside a word or value");
                                return NULL;
                        }
                        g_string_append_c(out, (char)(high << 4 | low));
                        i += 2;
                } else if (c == '=') {
                        status_fail(parser, "'=' inside a value must be written %%3D");
                        return NULL;
                } else if (!status_plain_char(c)) {
                        status_fail(parser, "unencoded byte 0x%02X", c);
                        return NULL;
                } else {
                        g_string_append_c(out, (char)c);
                }
        }
        return g_string_free(g_steal_pointer(&out), FALSE);
}

static bool status_parse_token(const StatusParser *parser, PoStatusLine *line, const char *token,
                               gsize len)
{
        if (len == 0)
                return status_fail(parser, "an empty word (two spaces in a row, or a space at an end)");
        const char *eq = memchr(token, '=', len);
        if (eq == NULL) {
                if (line->keys->len > 0)
                        return status_fail(parser, "a word after a field");
                char *word = status_decode(parser, token, len);
                if (word == NULL)
                        return false;
                g_ptr_array_add(line->words, word);
                return true;
        }
        gsize key_len = (gsize)(eq - token);
        if (key_len == 0)
                return status_fail(parser, "an empty key");
        if (!status_key_valid(token, key_len))
                return status_fail(parser, "bad key \"%.*s\" (expected [a-z0-9_]+)",
                                   (int)MIN(key_len, 64), token);
        g_autofree char *key = g_strndup(token, key_len);
        if (status_field_index(line, key) >= 0)
                return status_fail(parser, "key '%s' appears twice", key);
        char *value = status_decode(parser, eq + 1, len - key_len - 1);
        if (value == NULL)
                return false;
        g_ptr_array_add(line->keys, g_steal_pointer(&key));
        g_ptr_array_add(line->values, value);
        return true;
}

static PoStatusLine *status_parse_line(const StatusParser *parser, const char *text, gsize len)
{
        g_autoptr(PoStatusLine) line = po_status_line_new();
        const char *p = text, *end = text + len;
        for (;;) {
                const char *space = memchr(p, ' ', (gsize)(end - p));
                const char *token_end = space ? space : end;
                if (!status_parse_token(parser, line, p, (gsize)(token_end - p)))
                        return NULL;
                if (space == NULL)
                        break;
                p = space + 1;
        }
        return g_steal_pointer(&line);
}

GPtrArray *po_status_parse(const char *text, gsize len, const char *origin, GError **error)
{
        g_return_val_if_fail(text != NULL || len == 0, NULL);
        StatusParser parser = { origin ? origin : "(status)", 0, error };
        g_autoptr(GPtrArray) lines = g_ptr_array_new_with_free_func((GDestroyNotify)po_status_line_free);
        const char *p = text, *end = text + len;
        while (p < end) {
                parser.line++;
                const char *eol = memchr(p, '\n', (gsize)(end - p));
                const char *line_end = eol ? eol : end;
                gsize line_len = (gsize)(line_end - p);
                if (line_len > PO_STATUS_LINE_MAX) {
                        status_fail(&parser, "line longer than %d bytes", PO_STATUS_LINE_MAX);
                        return NULL;
                }
                const char *nul = memchr(p, '\0', line_len);
                if (nul != NULL) {
                        status_fail(&parser, "a NUL byte at column %" G_GSIZE_FORMAT,
                                    (gsize)(nul - p) + 1);
                        return NULL;
                }
                if (line_len > 0) {
                        PoStatusLine *line = status_parse_line(&parser, p, line_len);
                        if (line == NULL)
                                return NULL;
                        g_ptr_array_add(lines, line);
                }
                p = eol ? eol + 1 : end;
        }
        return g_steal_pointer(&lines);
}

char *po_status_escape_controls(const char *text)
{
        GString *out = g_string_sized_new(strlen(text));
        for (const unsigned char *c = (const unsigned char *)text; *c; c++) {
                if (*c < 0x20 || *c == 0x7f)
                        g_string_append_printf(out, "\\x%02x", *c);
                else
                        g_string_append_c(out, (char)*c);
        }
        return g_string_free(out, FALSE);
}

char *po_status_histogram_format(const guint64 *bounds, const guint64 *counts, guint n)
{
        GString *out = g_string_new(NULL);
        guint64 total = 0;
        for (guint i = 0; i < n; i++) {
                total += counts[i];
                if (i > 0)
                        g_string_append_c(out, ',');
                if (i + 1 < n)
                        g_string_append_printf(out, "%" G_GUINT64_FORMAT ":", bounds[i]);
                else
                        g_string_append(out, "inf:");
                g_string_append_printf(out, "%" G_GUINT64_FORMAT, total);
        }
        return g_string_free(out, FALSE);
}

bool po_status_histogram_parse(const char *value, GArray *bounds, GArray *cumulative)
{
        g_array_set_size(bounds, 0);
        g_array_set_size(cumulative, 0);
        g_auto(GStrv) buckets = g_strsplit(value ? value : "", ",", -1);
        guint64 last_count = 0;
        bool ended = false;
        for (char **bucket = buckets; *bucket; bucket++) {
                char *colon = strchr(*bucket, ':');
                if (!colon || ended)
                        return false;
                *colon = '\0';
                guint64 bound = G_MAXUINT64;
                char *end = NULL;
                if (g_str_equal(*bucket, "inf"))
                        ended = true;
                else if (!g_ascii_isdigit((*bucket)[0]) ||
                         (bound = g_ascii_strtoull(*bucket, &end, 10), *end != '\0'))
                        return false;
                if (!g_ascii_isdigit(colon[1]))
                        return false;
                guint64 count = g_ascii_strtoull(colon + 1, &end, 10);
                if (*end != '\0' || count < last_count)
                        return false;
                last_count = count;
                g_array_append_val(bounds, bound);
                g_array_append_val(cumulative, count);
        }
        return ended;
}

void po_status_line_add_time(PoStatusLine *line, const char *key, gint64 unix_us)
{
        g_autoptr(GDateTime) when = g_date_time_new_from_unix_utc(unix_us / G_USEC_PER_SEC);
        g_autofree char *text = when ? g_date_time_format_iso8601(when) : NULL;
        po_status_line_add_field(line, key, text ? text : "?");
}

void po_status_line_add_histogram(PoStatusLine *line, const char *key, const char *sum_key,
                                  const guint64 *bounds, const guint64 *counts, guint n,
                                  guint64 sum_ms)
{
        g_autofree char *histogram = po_status_histogram_format(bounds, counts, n);
        po_status_line_add_field(line, key, histogram);
        po_status_line_add_field_printf(line, sum_key, "%" G_GUINT64_FORMAT, sum_ms);
}

bool po_status_line_histogram(const PoStatusLine *line, const char *key, const char *sum_key,
                              GArray *bounds, GArray *cumulative, guint64 *sum_ms)
{
        if (!po_status_histogram_parse(po_status_line_field(line, key), bounds, cumulative))
                return false;
        if (!po_status_line_field_uint64(line, sum_key, sum_ms))
                *sum_ms = 0;
        return true;
}
