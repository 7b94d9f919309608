/* fuzz-status-line.c - libFuzzer target: po_status_parse() on any bytes; what
 * parses must encode and parse back to the same lines, and its encoding must
 * be a fixed point (encode(parse(encode(x))) == encode(x)). */
#include "status-line.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static GString *status_encode_all(const GPtrArray *lines)
{
        GString *out = g_string_new(NULL);
        for (guint i = 0; i < lines->len; i++)
                po_status_line_append_to(lines->pdata[i], out);
        return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        GError *error = NULL;
        GPtrArray *lines = po_status_parse((const char *)data, size, "F", &error);
        if (lines == NULL) {
                if (error == NULL || strncmp(error->message, "F: line ", 8) != 0)
                        abort();
                g_error_free(error);
                return 0;
        }
        if (error != NULL)
                abort();
        for (guint i = 0; i < lines->len; i++) {
                PoStatusLease lease;
                po_status_line_as_lease(lines->pdata[i], &lease);
                guint64 n;
                po_status_line_field_uint64(lines->pdata[i], "pid", &n);
        }
        GString *encoded = status_encode_all(lines);
        GPtrArray *again = po_status_parse(encoded->str, encoded->len, "F2", &error);
        /* The canonical encoding is never longer than what parsed (an
         * escape decodes to one byte and is written back in at most three),
         * so it cannot cross the line limit: it must parse. */
        if (again == NULL || again->len != lines->len)
                abort();
        for (guint i = 0; i < lines->len; i++)
                if (!po_status_line_equal(lines->pdata[i], again->pdata[i]))
                        abort();
        GString *twice = status_encode_all(again);
        if (!g_string_equal(encoded, twice))
                abort();
        g_string_free(twice, TRUE);
        g_string_free(encoded, TRUE);
        g_ptr_array_unref(again);
        g_ptr_array_unref(lines);
        return 0;
}
