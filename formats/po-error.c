/* po-error.c - builds the messages of PO_FORMAT_ERROR so that every
 * corruption report has the same "FILE: offset 0xNN: expected ..." shape. */
#include "po-error.h"

#include <string.h>

/* clang-format would split the quark name at its dashes. */
// clang-format off
G_DEFINE_QUARK(po-format-error-quark, po_format_error)
// clang-format on

void po_format_set_corrupt(GError **error, const char *file, guint64 offset,
                           const char *format, ...)
{
        if (error == NULL)
                return;
        va_list args;
        va_start(args, format);
        g_autofree char *what = g_strdup_vprintf(format, args);
        va_end(args);
        g_set_error(error, PO_FORMAT_ERROR, PO_FORMAT_ERROR_CORRUPT,
                    "%s: offset 0x%" G_GINT64_MODIFIER "x: expected %s",
                    file ? file : "(buffer)", offset, what);
}

void po_format_set_io(GError **error, const char *file, int errnum,
                      const char *what)
{
        g_set_error(error, PO_FORMAT_ERROR, PO_FORMAT_ERROR_IO, "%s: %s: %s",
                    file ? file : "(fd)", what, g_strerror(errnum));
}
